"""Arguments and dispatch of mono's tool subcommands (everything except fit/validate/test).

Each tool's entry is ``(add_arguments(parser), run(namespace))`` in a ``COMMANDS`` table of a
module that imports only argparse at module level: this one (synth, export, predict) and
:mod:`mono.evaluation.cli` (export-gt, evaluate, evaluate-pose). ``run`` imports the tool's
real module (torch and all), so ``mono --help`` and ``mono <tool> --help`` stay instant.
"""

from __future__ import annotations

import argparse
import importlib

TOOL_MODULES = {
    "synth": "mono.tools",
    "export-gt": "mono.evaluation.cli",
    "evaluate": "mono.evaluation.cli",
    "evaluate-pose": "mono.evaluation.cli",
    "export": "mono.tools",
    "predict": "mono.tools",
    "benchmark": "mono.benchmark_report",
    "check-data": "mono.tools",
}

# Choices that mono.export and mono.predict check too; defined here so parsers need no torch.
EXPORT_FORMATS = ("pt", "torchscript", "onnx", "monodepth2")
EXPORT_PARTS = ("encoder", "depth", "pose", "all")
ONNX_OPSET = 17
COLOUR_EXTS = ("png", "jpg")
WEIGHTS_HELP = (
    "Monodepth2 weights folder (encoder.pth, depth.pth, ...) or a published model's name "
    "(mono_640x192, mono+stereo_1024x320, ...: downloaded once, see mono.model_zoo)"
)


# ----------------------------------------------------------------------------- synth
def _add_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (KITTI raw layout + splits/)")
    p.add_argument("--seed", type=int, default=0, help="scene and trajectory seed")
    p.add_argument("--preset", default="default", help="size preset: tiny | default")


def _run_synth(ns: argparse.Namespace) -> None:
    from mono.data.synth import write_dataset

    out = write_dataset(ns.out, seed=ns.seed, preset=ns.preset, verbose=True)
    print(f"synthetic drives in {out} (splits in {out}/splits)")


# ----------------------------------------------------------------------------- export
def _add_export(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="mono checkpoint (.ckpt) to export")
    src.add_argument("--weights", help=WEIGHTS_HELP)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--format", required=True, choices=EXPORT_FORMATS, dest="fmt", help="file format"
    )
    parser.add_argument("--part", default="all", choices=EXPORT_PARTS, help="network(s) to export")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help="ONNX opset (>= 17)")


def _run_export(ns: argparse.Namespace) -> list:
    from mono.checkpoint import load_networks
    from mono.export import export_networks
    from mono.model_zoo import resolve_weights
    from mono.output_files import OutputError

    try:
        nets = load_networks(ns.ckpt or resolve_weights(ns.weights))
        written = export_networks(nets, ns.out, ns.fmt, ns.part, ns.opset)
    except (ValueError, FileNotFoundError, OutputError) as err:  # incl. CheckpointError
        raise SystemExit(f"mono export: {err}") from None
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return written


# ----------------------------------------------------------------------------- predict
def _add_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image, a folder of images, or a video / animated GIF")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="mono checkpoint (.ckpt)")
    src.add_argument("--weights", help=WEIGHTS_HELP)
    parser.add_argument("--out", default="predictions", help="output folder")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--ext", default="png", choices=COLOUR_EXTS, help="colour map format")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument(
        "--post-process", action="store_true", help="blend in the mirrored frame's prediction"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        metavar="S",
        help="metres per unit of the model's depth (needed for metric outputs of a monocular "
        "model; default: the model's own metric scale)",
    )
    parser.add_argument(
        "--point-cloud",
        action="store_true",
        help="write <name>.ply, the frame's pixels in 3-D (metres, camera frame), coloured",
    )
    for name, what in (("fx", "width"), ("fy", "height"), ("cx", "width"), ("cy", "height")):
        parser.add_argument(
            f"--{name}",
            type=float,
            default=None,
            help=f"{name} of the camera divided by the image {what}, for --point-cloud "
            "(default: the model's training K, else Monodepth2's KITTI K 0.58/1.92/0.5/0.5)",
        )
    parser.add_argument(
        "--video",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="also write the frames beside their depth as a video: FILE.mp4 or FILE.gif "
        "(default OUT/<input name>_depth.mp4)",
    )


def _run_predict(ns: argparse.Namespace) -> list:
    from pathlib import Path

    import torch

    from mono.checkpoint import load_networks, read_checkpoint
    from mono.model_zoo import resolve_weights
    from mono.output_files import OutputError
    from mono.point_cloud import choose_intrinsics
    from mono.predict import VideoBackendError, predict

    device = ns.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    video = ns.video
    if video == "":
        video = Path(ns.out) / f"{Path(ns.input).stem}_depth.mp4"
    skipped: list[str] = []
    try:
        source = ns.ckpt or resolve_weights(ns.weights)
        nets = load_networks(source, with_pose=False)
        intrinsics = None
        if ns.point_cloud:
            stored = read_checkpoint(source) if ns.ckpt else {}
            given = (ns.fx, ns.fy, ns.cx, ns.cy)
            intrinsics = choose_intrinsics(
                given, source, stored.get("datamodule_hyper_parameters", {}), nets.learned_K
            )
            print(f"point clouds: intrinsics {intrinsics.describe()}")
        if ns.scale is not None and nets.metric_scale is not None:
            print(f"--scale {ns.scale:g} replaces the model's metric scale {nets.metric_scale:g}")
        preds = predict(
            nets, ns.input, ns.out, ns.batch_size, ns.ext, device, post_process=ns.post_process,
            scale=ns.scale, intrinsics=intrinsics, video=video, skipped=skipped,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, VideoBackendError, OutputError) as err:
        raise SystemExit(f"mono predict: {err}") from None  # CheckpointError is a ValueError
    metric = ns.scale is not None or nets.metric_scale is not None
    kind = "disparity + metric depth" if metric else "disparity (up to scale)"
    if intrinsics is not None:
        kind += " + point clouds"
    print(f"wrote {kind} for {len(preds)} frame(s) to {ns.out}")
    if skipped:
        raise SystemExit(
            f"mono predict: {len(skipped)} input(s) skipped (listed above as 'predict: skipped')"
        )
    return preds


# ----------------------------------------------------------------------------- check-data
def _add_check_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a training config (its data section)")
    parser.add_argument("--data.root", dest="root", help="dataset root (overrides the config's)")
    parser.add_argument("--data.split", dest="split", help="training split (overrides)")
    parser.add_argument(
        "--deep", action="store_true", help="decode every image in full (not only its header)"
    )


def _run_check_data(ns: argparse.Namespace) -> None:
    from mono.data.check import check_configured_data

    overrides = {"root": ns.root, "split": ns.split}
    try:
        problems = check_configured_data(ns.config, overrides, deep=ns.deep)
    except (ValueError, FileNotFoundError, OSError) as err:
        raise SystemExit(f"mono check-data: error: {err}") from None
    if problems:
        raise SystemExit(1)


COMMANDS = {
    "check-data": (_add_check_data, _run_check_data),
    "synth": (_add_synth, _run_synth),
    "export": (_add_export, _run_export),
    "predict": (_add_predict, _run_predict),
}


# ----------------------------------------------------------------------------- dispatch
def _entry(name: str):
    # A missing dependency of a tool surfaces as its own ImportError, naming the package.
    return importlib.import_module(TOOL_MODULES[name]).COMMANDS[name]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    _entry(name)[0](parser)


def run(ns: argparse.Namespace) -> None:
    _entry(ns.command)[1](ns)
