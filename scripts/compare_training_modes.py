"""Train self-supervised, supervised and hybrid depth models for the same steps and compare them.

Every mode starts from the same seed (so the depth network starts from the same weights and
sees the same batches, flips and jitter), trains for ``--steps`` optimiser steps on the
synthetic drives' training split, and is scored on the held-out test drive with the metric code
of validation (:func:`mono.metrics.batch_depth_metrics`, median-scaled as for monocular models,
plus abs_rel without median scaling: only ground truth gives a model metric scale). The
constant-depth baseline is the floor every model must beat.

    python scripts/compare_training_modes.py --steps 120 --batch-size 8 --preset tiny

The synthetic drives are rendered into ``--root`` on first use (default
``data/synthetic_<preset>``; ``data/synthetic`` for the default preset, as the main config).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

MODES = ("self_supervised", "supervised", "hybrid")
REPORTED = ("abs_rel", "rmse", "a1")


@dataclass
class ModeResult:
    """Mean test metrics of one trained model (over test images with ground truth)."""

    mode: str
    metrics: dict[str, float]
    abs_rel_unscaled: float
    final_loss: float
    seconds: float


def default_root(preset: str) -> Path:
    return Path("data/synthetic" if preset == "default" else f"data/synthetic_{preset}")


def parse_weights(text: str) -> dict[str, float]:
    """``"silog:1,gradient:0.5"`` -> ``{"silog": 1.0, "gradient": 0.5}``."""
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition(":")
        try:
            weights[name.strip()] = float(value) if value else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad weight in {item!r}") from None
    return weights


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per mode")
    p.add_argument("--height", type=int, default=64, help="network height (multiple of 32)")
    p.add_argument("--width", type=int, default=192, help="network width (multiple of 32)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--preset", default="tiny", help="synthetic preset (tiny, default)")
    p.add_argument("--root", type=Path, help="dataset root (default data/synthetic_<preset>)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--depth-net", default="resnet", choices=("resnet", "eigen"))
    p.add_argument(
        "--supervised-losses",
        type=parse_weights,
        default={"silog": 1.0},
        help="name:weight,... of mono.losses.SUPERVISED_LOSSES (default silog:1)",
    )
    p.add_argument("--supervised-weight", type=float, default=1.0, help="hybrid factor")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (constant)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--accelerator", default="cpu")
    return p


def make_data(args, mode: str):
    from mono.data.datamodule import KittiDataModule

    # Supervised training needs only the target frame; the others load its neighbours.
    frame_ids = ["0"] if mode == "supervised" else ["0", "-1", "1"]
    return KittiDataModule(
        root=str(args.root),
        split="splits",
        height=args.height,
        width=args.width,
        frame_ids=frame_ids,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        intrinsics="calib",
        depth="auto",
        seed=args.seed,
        synthesize=args.preset,
    )


def make_model(args, mode: str):
    from mono.module import DepthModel

    return DepthModel(
        height=args.height,
        width=args.width,
        frame_ids=["0"] if mode == "supervised" else ["0", "-1", "1"],
        depth_net=args.depth_net,
        pretrained=False,
        training_mode=mode,
        supervised_losses=args.supervised_losses,
        supervised_weight=args.supervised_weight,
        lr=args.lr,
        scheduler_step_size=10**6,  # a constant rate: the budget is in steps, not epochs
        eval_crop="none",
        eval_scaling="median",
    )


@torch.no_grad()
def evaluate(model, datamodule) -> tuple[dict[str, float], float, dict[str, float]]:
    """Mean per-image test metrics (median-scaled), unscaled abs_rel, and the baseline's."""
    from mono.data.augment import prepare_batch
    from mono.metrics import MAX_DEPTH, batch_depth_metrics, constant_depth_baseline

    datamodule.setup("test")
    model.eval()
    device = model.device
    rows: dict[str, list[Tensor]] = {"model": [], "unscaled": [], "baseline": []}
    kwargs = dict(crop="none", max_depth=MAX_DEPTH)
    for batch in datamodule.test_dataloader():
        views = prepare_batch(batch.to(device), model.hparams.height, model.hparams.width)
        depth = model.predict_depth(views.color[:, 0])
        gt, sizes = views.depth_gt, views.sizes
        rows["model"].append(batch_depth_metrics(depth, gt, sizes, median_scaling=True, **kwargs))
        rows["unscaled"].append(
            batch_depth_metrics(depth, gt, sizes, median_scaling=False, **kwargs)
        )
        rows["baseline"].append(constant_depth_baseline(gt, sizes, **kwargs))

    def mean(key: str) -> dict[str, float]:
        out = {}
        for name in rows[key][0]:
            values = torch.cat([r[name] for r in rows[key]])
            out[name] = float(values[~torch.isnan(values)].mean())
        return out

    return mean("model"), mean("unscaled")["abs_rel"], mean("baseline")


def train_mode(args, mode: str) -> tuple[ModeResult, dict[str, float]]:
    import pytorch_lightning as pl

    pl.seed_everything(args.seed, verbose=False)
    datamodule = make_data(args, mode)
    model = make_model(args, mode)
    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=1,
        max_steps=args.steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    metrics, unscaled, baseline = evaluate(model, datamodule)
    final_loss = float(trainer.callback_metrics.get("train/loss", math.nan))
    return ModeResult(mode, metrics, unscaled, final_loss, seconds), baseline


def format_table(results: list[ModeResult], baseline: dict[str, float]) -> str:
    head = f"{'mode':34s} {'abs_rel':>8s} {'rmse':>8s} {'a1':>8s} {'abs_rel*':>9s} {'train s':>8s}"
    lines = [head]
    for r in results:
        vals = " ".join(f"{r.metrics[k]:8.4f}" for k in REPORTED)
        lines.append(f"{r.mode:34s} {vals} {r.abs_rel_unscaled:9.4f} {r.seconds:8.1f}")
    vals = " ".join(f"{baseline[k]:8.4f}" for k in REPORTED)
    lines.append(f"{'constant depth (median-scaled)':34s} {vals} {'-':>9s} {'-':>8s}")
    lines.append("median-scaled metrics; abs_rel* = without median scaling (metric scale)")
    return "\n".join(lines)


def run_comparison(args) -> tuple[list[ModeResult], dict[str, float]]:
    """Train and score every mode of ``args.modes``; returns the results and the baseline."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
    results, baseline = [], {}
    for mode in args.modes:
        with contextlib.redirect_stdout(sys.stderr):  # Lightning's chatter stays off stdout
            result, baseline = train_mode(args, mode)
        results.append(result)
        print(
            f"{mode}: {args.steps} steps in {result.seconds:.0f} s, "
            f"final train loss {result.final_loss:.4f}, abs_rel {result.metrics['abs_rel']:.4f}",
            flush=True,
        )
    return results, baseline


def verdicts(results: list[ModeResult]) -> dict[str, bool]:
    """Whether each of supervised/hybrid reached a lower abs_rel than self-supervised."""
    by_mode = {r.mode: r.metrics["abs_rel"] for r in results}
    if "self_supervised" not in by_mode:
        return {}
    ss = by_mode["self_supervised"]
    return {m: by_mode[m] < ss for m in ("supervised", "hybrid") if m in by_mode}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.root = args.root or default_root(args.preset)
    results, baseline = run_comparison(args)
    print(
        f"\n{args.steps} steps, batch {args.batch_size}, {args.height}x{args.width}, "
        f"{args.depth_net} depth net, preset {args.preset}, seed {args.seed}, "
        f"test drive of {args.root}"
    )
    print(format_table(results, baseline))
    ss = next((r.metrics["abs_rel"] for r in results if r.mode == "self_supervised"), None)
    for mode, lower in verdicts(results).items():
        value = next(r.metrics["abs_rel"] for r in results if r.mode == mode)
        word = "lower" if lower else "NOT lower"
        print(f"{mode}: abs_rel {value:.4f} is {word} than self-supervised {ss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
