"""Arguments of ``mono export-gt``, ``mono evaluate`` and ``mono evaluate-pose``.

``mono.tools`` dispatches these names here (:data:`COMMANDS`); each entry is
``(add_arguments(parser), run(namespace))``. Only argparse is imported at module level, so
building ``mono``'s parser stays cheap; the work is done by :mod:`mono.evaluation.commands`.
A user error (unknown split, missing ground truth, corrupt checkpoint, mismatched counts)
ends the command with one ``mono <command>: error: ...`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

SPLIT_HELP = (
    "{names}, or a split directory holding test_files.txt (absolute, or relative to the "
    "working directory or to --data), e.g. the synthetic drives' 'splits'"
)


def _user_errors(command: str) -> Callable:
    """Turn the errors a user can cause into one ``mono <command>: error: ...`` line."""

    def wrap(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
        @functools.wraps(run)
        def guarded(ns: argparse.Namespace) -> None:
            from mono.output_files import OutputError

            try:
                run(ns)
            except (ValueError, FileNotFoundError, OutputError) as err:  # incl. CheckpointError
                raise SystemExit(f"mono {command}: error: {err}") from None

        return guarded

    return wrap


# ----------------------------------------------------------------------------- shared options
def _add_gt_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gt-source",
        choices=("lidar", "dense"),
        default=None,
        help="ground truth of a split directory: projected LiDAR scans (default) or the dense "
        "proj_depth/groundtruth PNGs. eigen is always LiDAR, eigen_benchmark always dense",
    )
    p.add_argument(
        "--depth",
        choices=("velodyne", "camera"),
        default=None,
        help="depth stored for LiDAR ground truth: the scanner's forward x, as Monodepth2's Eigen "
        "ground truth (default for eigen), or the camera's z (default for split directories: "
        "what a renderer's depth holds)",
    )


def gt_kind(split: str, gt_source: str | None, depth: str | None) -> str | None:
    """Ground-truth kind ("velodyne", "camera", "dense") of the options; None = the split's."""
    from mono.evaluation.gt import resolve_gt_kind

    if gt_source == "dense":
        if depth is not None:
            raise ValueError("--depth applies to LiDAR ground truth, not to --gt-source dense")
        return resolve_gt_kind(split, "dense")
    if depth is None and gt_source == "lidar":
        depth = resolve_gt_kind(split, None)
        if depth == "dense":
            raise ValueError(f"the {split} split's ground truth is dense, not --gt-source lidar")
    return resolve_gt_kind(split, depth) if depth is not None else None


def _add_model_source(p: argparse.ArgumentParser, ext_disp: bool) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--ckpt", metavar="FILE", help="a mono (Lightning) checkpoint, e.g. runs/x/last.ckpt"
    )
    group.add_argument(
        "--weights",
        metavar="DIR|NAME",
        help="a Monodepth2 weights folder (encoder.pth, depth.pth[, pose*.pth]) or a published "
        "model's name (mono_640x192, stereo_1024x320, ...: downloaded once, see mono.model_zoo)",
    )
    if ext_disp:
        group.add_argument(
            "--ext-disp",
            metavar="NPY",
            help="a .npy of (N, h, w) disparities from another method, scored as they are",
        )


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-size", type=int, default=16, metavar="N", help="images per forward pass"
    )
    p.add_argument(
        "--img-ext",
        default="auto",
        choices=("auto", "png", "jpg"),
        help="image files (auto: png, else jpg)",
    )
    p.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="auto (cuda if available), cpu, cuda, cuda:1",
    )


def _load(ns: argparse.Namespace, with_pose: bool, log: Callable[[str], None]):
    """LoadedNetworks from --ckpt or --weights, on --device."""
    import pickle
    import zipfile
    from pathlib import Path

    import torch

    from mono.checkpoint import CheckpointError, load_networks
    from mono.model_zoo import resolve_weights

    if ns.ckpt is not None and Path(ns.ckpt).is_dir():
        raise CheckpointError(f"--ckpt {ns.ckpt} is a folder; use --weights for Monodepth2 weights")
    source = ns.ckpt or resolve_weights(ns.weights, log=log)
    log(f"-> Loading weights from {source}")
    try:
        nets = load_networks(source, with_pose=with_pose)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        # What read_checkpoint does not word itself: a non-zip .ckpt, a weights folder's .pth.
        raise CheckpointError(
            f"{source} is corrupt or truncated ({type(err).__name__}: {err}); use another "
            "checkpoint or weights folder"
        ) from None
    device = ns.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device available (use --device cpu)")
    nets.depth.to(device)
    if nets.pose is not None:
        nets.pose.to(device)
    return nets, torch.device(device)


def _check_batch_size(value: int) -> None:
    if value < 1:
        raise ValueError(f"--batch-size {value}: must be >= 1")


# ----------------------------------------------------------------------------- export-gt
def add_export_gt(p: argparse.ArgumentParser) -> None:
    from_names = SPLIT_HELP.format(names="eigen (LiDAR) | eigen_benchmark (dense PNGs)")
    p.add_argument(
        "--data", required=True, metavar="ROOT", help="KITTI raw root (or the synthetic drives')"
    )
    p.add_argument("--split", default="eigen", help=f"test split: {from_names}")
    p.add_argument(
        "--out",
        default=None,
        metavar="NPZ",
        help="output .npz; default ROOT/gt_depths_<split>.npz, or <split dir>/gt_depths_<kind>.npz",
    )
    _add_gt_source(p)


@_user_errors("export-gt")
def run_export_gt(ns: argparse.Namespace) -> None:
    from mono.evaluation.commands import cmd_export_gt

    kind = gt_kind(ns.split, ns.gt_source, ns.depth)
    cmd_export_gt(ns.data, ns.split, ns.out, kind)


# ----------------------------------------------------------------------------- evaluate
def add_evaluate(p: argparse.ArgumentParser) -> None:
    _add_model_source(p, ext_disp=True)
    p.add_argument(
        "--data", default=None, metavar="ROOT", help="KITTI raw root (images, default ground truth)"
    )
    split_help = SPLIT_HELP.format(names="eigen | eigen_benchmark | benchmark (server PNGs)")
    p.add_argument("--split", default="eigen", help=f"test split: {split_help}")
    p.add_argument(
        "--scaling",
        default="auto",
        choices=("auto", "median", "stereo", "none"),
        help="auto: stereo (the model's fixed metric scale: x1 when trained with a metric "
        "baseline or ground truth, x5.4 with Monodepth2's 0.1 m convention) for models that "
        "have one, else per-image median. --ext-disp with stereo: x5.4",
    )
    p.add_argument("--post-process", action="store_true", help="flip-and-blend (Monodepth)")
    p.add_argument("--per-image", default=None, metavar="CSV", help="per-image metrics file")
    p.add_argument(
        "--gt",
        default=None,
        metavar="NPZ|DIR",
        help="exported ground truth (default: see export-gt); with --images, a folder of depth "
        "maps named as the images: PNG (depth x --gt-scale, 0 = none) or .npy (metres)",
    )
    p.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="evaluate on your own folder of images instead of a KITTI split (needs --gt DIR)",
    )
    p.add_argument(
        "--gt-scale",
        type=float,
        default=256.0,
        metavar="S",
        help="with --images: PNG ground-truth value of one metre (KITTI's uint16: 256)",
    )
    p.add_argument(
        "--mask",
        default=None,
        metavar="DIR",
        help="with --images: masks named as the images; only non-zero pixels are scored",
    )
    _add_gt_source(p)
    p.add_argument(
        "--crop",
        default="auto",
        choices=("auto", "garg", "none"),
        help="auto: the Garg crop for eigen, none for eigen_benchmark, split directories and "
        "--images",
    )
    p.add_argument(
        "--save-disps", default=None, metavar="NPY", help="save the disparities to this .npy"
    )
    p.add_argument(
        "--eigen-to-benchmark",
        action="store_true",
        help="with --ext-disp of the 697 Eigen predictions and --split eigen_benchmark: keep "
        "the 652 frames that split scores",
    )
    p.add_argument(
        "--benchmark-out",
        default="benchmark_predictions",
        metavar="DIR",
        help="folder for the KITTI server's PNGs (--split benchmark)",
    )
    _add_runtime(p)


def choose_scaling(
    requested: str, model_scale: float | None, external: bool = False
) -> tuple[str, float, str]:
    """``(scaling, factor, reason)``: auto = stereo for models with a metric scale, else median.

    Args:
        requested: --scaling.
        model_scale: the model's metric scale (:attr:`LoadedNetworks.metric_scale`); None for
            a monocular model or external disparities.
        external: the disparities come from --ext-disp (another method).

    Returns:
        The scaling, the factor "stereo" multiplies depth by (the model's scale; Monodepth2's
        5.4 for external disparities and for the benchmark PNGs of a scale-free model), and why.

    Raises:
        ValueError: --scaling stereo for a model without a metric scale.
    """
    from mono.data.calib import STEREO_SCALE_FACTOR

    factor = STEREO_SCALE_FACTOR if model_scale is None else model_scale
    if requested == "stereo" and model_scale is None and not external:
        raise ValueError(
            "--scaling stereo: the model has no metric scale (trained without a stereo frame "
            "'s'); use --scaling median"
        )
    if requested != "auto":
        return requested, factor, "as requested"
    if external:
        return "median", factor, "auto: external disparities, scale unknown"
    if model_scale is not None:
        return "stereo", factor, f"auto: the model's depth is metric, x{model_scale:g}"
    return "median", factor, "auto: a monocular model has no metric scale"


def _check_folder_options(ns: argparse.Namespace) -> None:
    """--images goes with --gt DIR and a model; --gt-scale and --mask only with --images."""
    from pathlib import Path

    if ns.images is None:
        if ns.gt_scale != 256.0 or ns.mask is not None:
            raise ValueError("--gt-scale and --mask apply to --images DIR only")
        return
    if ns.ext_disp is not None:
        raise ValueError("--images needs a model (--ckpt or --weights), not --ext-disp")
    if ns.gt is None or not Path(ns.gt).is_dir():
        raise ValueError(f"--images needs --gt DIR, a folder of depth maps (got {ns.gt})")
    kitti_options = {"--data": ns.data, "--gt-source": ns.gt_source, "--depth": ns.depth}
    for option, value in kitti_options.items():
        if value is not None:
            raise ValueError(f"{option} is for KITTI splits; --images scores the folders given")


@_user_errors("evaluate")
def run_evaluate(ns: argparse.Namespace) -> None:
    from mono.evaluation.commands import cmd_evaluate, disparity_predictor
    from mono.evaluation.folder import cmd_evaluate_folder

    _check_batch_size(ns.batch_size)
    _check_folder_options(ns)
    if ns.images is not None:
        nets, device = _load(ns, with_pose=False, log=print)
        predict_fn, to_scaled_disp = disparity_predictor(nets)
        scaling, factor, reason = choose_scaling(ns.scaling, nets.metric_scale)
        print(f"-> Scaling: {scaling} ({reason})")
        cmd_evaluate_folder(
            ns.images, ns.gt, predict_fn, nets.height, nets.width, mask=ns.mask,
            gt_scale=ns.gt_scale, scaling=scaling, metric_scale=factor,
            post_process=ns.post_process, to_scaled_disp=to_scaled_disp,
            crop=None if ns.crop == "auto" else ns.crop, per_image_csv=ns.per_image,
            save_disps=ns.save_disps, batch_size=ns.batch_size, device=device,
        )  # fmt: skip
        return
    if ns.data is None and not (ns.ext_disp and (ns.gt or ns.split == "benchmark")):
        raise ValueError(
            "--data ROOT is required (only --ext-disp with --gt, or with --split benchmark, "
            "can do without)"
        )
    if ns.ext_disp and ns.post_process:
        raise ValueError("--post-process needs a model; --ext-disp disparities are final")
    kind = None if ns.split == "benchmark" else gt_kind(ns.split, ns.gt_source, ns.depth)
    kwargs = {}
    model_scale = None
    if ns.ext_disp is None:
        nets, device = _load(ns, with_pose=False, log=print)
        predict_fn, to_scaled_disp = disparity_predictor(nets)
        model_scale = nets.metric_scale
        kwargs = dict(
            predict_fn=predict_fn,
            to_scaled_disp=to_scaled_disp,
            height=nets.height,
            width=nets.width,
            device=device,
        )
        print(f"-> Model trained at {nets.width}x{nets.height}, frame_ids {nets.frame_ids}")
    scaling, factor, reason = choose_scaling(ns.scaling, model_scale, ns.ext_disp is not None)
    print(f"-> Scaling: {scaling} ({reason})")
    cmd_evaluate(
        ns.data,
        ns.split,
        ext_disp=ns.ext_disp,
        scaling=scaling,
        metric_scale=factor,
        post_process=ns.post_process,
        gt_path=ns.gt,
        gt_kind=kind,
        crop=None if ns.crop == "auto" else ns.crop,
        per_image_csv=ns.per_image,
        eigen_to_benchmark=ns.eigen_to_benchmark,
        save_disps=ns.save_disps,
        benchmark_out=ns.benchmark_out,
        img_ext=ns.img_ext,
        batch_size=ns.batch_size,
        **kwargs,
    )


# ----------------------------------------------------------------------------- evaluate-pose
def add_evaluate_pose(p: argparse.ArgumentParser) -> None:
    _add_model_source(p, ext_disp=False)
    p.add_argument(
        "--data",
        required=True,
        metavar="ROOT",
        help="KITTI odometry root (--sequence) or raw root (--drive)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--sequence",
        type=int,
        metavar="N",
        help="odometry sequence: 9 or 10 (or 09, 10) as in Monodepth2",
    )
    which.add_argument(
        "--drive",
        metavar="DATE/FOLDER",
        help="a KITTI-raw-layout drive <date>/<drive folder> with poses.txt (camera 2 -> world, "
        "odometry format), e.g. a synthetic test drive",
    )
    p.add_argument(
        "--save-poses", default=None, metavar="NPY", help="save the predicted poses to this .npy"
    )
    _add_runtime(p)


@_user_errors("evaluate-pose")
def run_evaluate_pose(ns: argparse.Namespace) -> None:
    from mono.evaluation.commands import cmd_evaluate_pose, pose_predictor

    _check_batch_size(ns.batch_size)
    nets, device = _load(ns, with_pose=True, log=print)
    cmd_evaluate_pose(
        pose_predictor(nets),
        ns.data,
        nets.height,
        nets.width,
        sequence=ns.sequence,
        drive=ns.drive,
        batch_size=ns.batch_size,
        img_ext=ns.img_ext,
        device=device,
        save_poses=ns.save_poses,
    )


COMMANDS = {
    "export-gt": (add_export_gt, run_export_gt),
    "evaluate": (add_evaluate, run_evaluate),
    "evaluate-pose": (add_evaluate_pose, run_evaluate_pose),
}
