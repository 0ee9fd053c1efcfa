"""Does training on the video layout match training on the KITTI layout of the same drives?

Writes the synthetic drives' training and validation drives in the video layout (as mp4 files
and as folders of PNG frames, with an ``intrinsics.txt`` holding the drives' true K and split
files naming the sequences of each stage; :func:`mono.data.synth_video.write_video_tree`),
then trains with the real CLI, same seed and same optimiser steps:

* ``kitti``:  ``mono fit --config configs/synthetic.yaml`` on the KITTI-layout drives;
* ``mp4``:    ``... --config configs/video.yaml --data.root <work>/mp4``;
* ``frames``: ``... --config configs/video.yaml --data.root <work>/frames``;

and scores each run's ``last.ckpt`` on the held-out test drive, which stays in the KITTI
layout, with the metric code of validation (median-scaled, no crop; the ``evaluate`` helper of
``scripts/compare_training_modes.py``). The constant-depth baseline is the floor.

Like for like: the video trees hold both cameras of every drive (the KITTI split trains on the
left and the right images as separate monocular sequences), and the video runs keep every
frame (``--data.static_threshold=null``), as the KITTI split lists the stationary stretch too.
configs/video.yaml drops near-static frames by default (``static_threshold: 1.0``): the runs
``mp4_static`` / ``frames_static`` train with that filter, on fewer samples. What stays
different is what a user's video brings: mp4 frames pass through H.264 and the JPEG frame cache,
video frames are cropped centrally to the network's aspect (the KITTI layout resizes the whole
frame), and sample ``i`` of an epoch is another frame in each layout (the datasets list their
samples in another order). No run validates (video.yaml has no ground truth to validate with).

    python scripts/video_vs_kitti.py --preset default --steps 2000
    python scripts/video_vs_kitti.py --preset tiny --steps 10 --runs kitti mp4 frames mp4_static
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_training_modes import REPORTED, default_root, evaluate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNS = ("kitti", "mp4", "frames", "mp4_static", "frames_static")
TOLERANCE = 0.10  # the "within 10 %" of the KITTI-layout run's abs_rel


@dataclass
class RunResult:
    """One trained run, scored on the test drive.

    Attributes:
        run: a name of :data:`RUNS`.
        train_samples: samples of its training set (after any static-frame filter).
        static_removed: frames its static-frame filter dropped (0 without the filter).
        metrics: mean median-scaled test metrics (abs_rel, rmse, a1, ...).
        seconds: wall time of ``mono fit``.
    """

    run: str
    train_samples: int
    static_removed: int
    metrics: dict[str, float]
    seconds: float


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", choices=("tiny", "default"), help="synthetic preset")
    p.add_argument("--root", type=Path, help="synthetic drives (default data/synthetic[_preset])")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per run")
    p.add_argument("--seed", type=int, default=0, help="seed_everything and data.seed")
    p.add_argument("--height", type=int, default=64, help="network height (configs/synthetic)")
    p.add_argument("--width", type=int, default=192, help="network width (configs/synthetic)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--runs", nargs="+", default=["kitti", "mp4", "frames"], choices=RUNS)
    p.add_argument("--work", type=Path, help="video trees and runs (default runs/video_vs_kitti)")
    p.add_argument("--out", type=Path, help="also write the results to this JSON file")
    return p


def synthetic_root(args) -> Path:
    """The KITTI-layout drives, rendered (seed 0, as the configs' data) if missing."""
    from mono.data.synth import write_dataset

    root = args.root or default_root(args.preset)
    return write_dataset(root, seed=0, preset=args.preset)


def write_trees(root: Path, work: Path) -> dict[str, Path]:
    """The train and val drives, both cameras, as mp4 files and as frame folders."""
    from mono.data.synth_video import write_video_tree

    trees = {}
    for kind, name in (("mp4", "mp4"), ("folder", "frames")):
        shutil.rmtree(work / name, ignore_errors=True)  # a stale frame cache must not survive
        trees[name] = write_video_tree(root, work / name, kind, ("train", "val"), (2, 3))
    return trees


def fit_arguments(args, run: str, root: Path, trees: dict[str, Path], folder: Path) -> list[str]:
    """``mono fit`` arguments of a run: the README's configs plus the shared budget."""
    configs = ["--config", str(REPO / "configs" / "synthetic.yaml")]
    if run == "kitti":
        data = [f"--data.root={root}", "--data.synthesize=null"]
    else:
        tree = trees[run.removesuffix("_static")]
        configs += ["--config", str(REPO / "configs" / "video.yaml")]
        data = [f"--data.root={tree}", f"--data.split={tree / 'splits'}"]
        if not run.endswith("_static"):
            data.append("--data.static_threshold=null")  # keep every frame, as the KITTI split
    return [
        "fit",
        *configs,
        *data,
        f"--seed_everything={args.seed}",
        f"--data.seed={args.seed}",
        f"--data.height={args.height}",
        f"--data.width={args.width}",
        f"--data.batch_size={args.batch_size}",
        f"--data.num_workers={args.num_workers}",
        f"--trainer.default_root_dir={folder}",
        f"--trainer.max_steps={args.steps}",
        "--trainer.max_epochs=-1",
        # One learning rate for the whole comparison: the main job's StepLR counts epochs, and
        # on the tiny drives (88 samples) a few hundred steps are dozens of them.
        "--model.scheduler_step_size=100000",
        "--trainer.limit_val_batches=0",
        "--trainer.logger=false",
    ]


def training_set(checkpoint: Path) -> tuple[int, int]:
    """(samples, static frames removed) of the training set a checkpoint was trained on,
    rebuilt from the DataModule options the checkpoint stores."""
    from mono.data.datamodule import KittiDataModule

    dataset = KittiDataModule.load_from_checkpoint(checkpoint).build_dataset("train")
    dataset.check_files()
    return len(dataset), sum(getattr(dataset, "removed_static", {}).values())


def held_out_data(args, root: Path):
    """The held-out test drive in the KITTI layout, as every run is scored on it."""
    from mono.data.datamodule import KittiDataModule

    return KittiDataModule(
        root=str(root),
        split=str(root / "splits"),
        height=args.height,
        width=args.width,
        frame_ids=["0"],
        batch_size=args.batch_size,
        num_workers=0,
        intrinsics="calib",
        depth="auto",
    )


def train_and_score(args, run: str, root: Path, trees: dict[str, Path]):
    """Train one run through ``mono fit``; returns its :class:`RunResult` and the baseline."""
    import torch

    from mono.cli import main as mono
    from mono.inspect import load_model

    folder = args.work / "runs" / run
    shutil.rmtree(folder, ignore_errors=True)  # `mono fit` refuses a folder with checkpoints
    argv = fit_arguments(args, run, root, trees, folder)
    print(f"{run}: mono {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Lightning's chatter stays off stdout
        mono(argv)
        seconds = time.perf_counter() - start
        checkpoint = folder / "checkpoints" / "last.ckpt"
        step = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
        if step != args.steps:
            raise RuntimeError(f"{checkpoint}: step {step}, expected {args.steps}")
        samples, removed = training_set(checkpoint)
        metrics, _, baseline = evaluate(load_model(checkpoint), held_out_data(args, root))
    return RunResult(run, samples, removed, metrics, seconds), baseline


def relative_to_kitti(results: list[RunResult]) -> dict[str, float]:
    """(abs_rel - abs_rel of the KITTI-layout run) / the latter, per run."""
    kitti = next((r.metrics["abs_rel"] for r in results if r.run == "kitti"), None)
    if kitti is None:
        return {}
    return {r.run: (r.metrics["abs_rel"] - kitti) / kitti for r in results}


def format_table(results: list[RunResult], baseline: dict[str, float], steps: int, batch: int):
    relative = relative_to_kitti(results)
    head = (
        f"{'run':16s} {'samples':>7s} {'static':>6s} {'epochs':>6s} "
        + " ".join(f"{k:>8s}" for k in REPORTED)
        + f" {'vs kitti':>9s} {'fit s':>7s}"
    )
    lines = [head]
    for r in results:
        vs = f"{relative[r.run]:+9.1%}" if r.run in relative else f"{'-':>9s}"
        lines.append(
            f"{r.run:16s} {r.train_samples:7d} {r.static_removed:6d} "
            f"{steps * batch / r.train_samples:6.2f} "
            + " ".join(f"{r.metrics[k]:8.4f}" for k in REPORTED)
            + f" {vs} {r.seconds:7.1f}"
        )
    lines.append(
        f"{'constant depth':16s} {'-':>7s} {'-':>6s} {'-':>6s} "
        + " ".join(f"{baseline[k]:8.4f}" for k in REPORTED)
        + f" {'-':>9s} {'-':>7s}"
    )
    lines.append(
        "samples: training samples (static: frames dropped by the static-frame filter); "
        "epochs: steps x batch / samples;\nmedian-scaled test metrics on the held-out drive "
        "(KITTI layout); vs kitti: relative difference of abs_rel"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.work = args.work or Path("runs/video_vs_kitti")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    root = synthetic_root(args)
    trees = write_trees(root, args.work)
    print(f"video trees: {trees['mp4']} (mp4), {trees['frames']} (frames); test drive of {root}")
    if any(not run.endswith("_static") and run != "kitti" for run in args.runs):
        print(
            "configs/video.yaml drops near-static frames (static_threshold: 1.0); the runs mp4 "
            "and frames keep them (null), as the KITTI split does; *_static use the filter"
        )
    results, baseline = [], {}
    for run in args.runs:
        result, baseline = train_and_score(args, run, root, trees)
        results.append(result)
        print(
            f"{run}: {args.steps} steps in {result.seconds:.0f} s, "
            f"abs_rel {result.metrics['abs_rel']:.4f}",
            flush=True,
        )
    print(
        f"\n{args.steps} steps, batch {args.batch_size}, {args.height}x{args.width}, "
        f"preset {args.preset}, seed {args.seed}"
    )
    print(format_table(results, baseline, args.steps, args.batch_size))
    for run, difference in relative_to_kitti(results).items():
        if run != "kitti":
            word = "within" if abs(difference) <= TOLERANCE else "NOT within"
            print(f"{run}: abs_rel {word} {TOLERANCE:.0%} of the KITTI layout ({difference:+.1%})")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": [asdict(r) for r in results],
                    "baseline": baseline,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
