"""Does monocular training from scratch escape its degenerate phase, and when?

Trains the monocular model (frames 0 -1 1, ResNet-18 from scratch) on the synthetic drives for
``--steps`` optimiser steps with each of ``--seeds``, and every ``--every`` steps scores the
held-out test drive (median-scaled abs_rel, as validation does) and diagnoses the pose network
on the validation drive: the predicted inter-frame translation and rotation against the drives'
true poses. Translation is compared up to the run's scale: ``t corr`` is the correlation of
predicted and true translation lengths over the samples (a pose network that ignores the
speed scores about 0), ``rot`` the mean predicted rotation angle beside the true one.

The escape step of a seed is its first evaluation below half the constant-depth baseline.

    python scripts/convergence.py --steps 600 --every 100 --seeds 0 1 2
    python scripts/convergence.py --steps 600 --every 100 --seeds 0 1 2 \
        --set automask_warmup_steps=200

``--set key=value`` overrides any DepthModel option (repeatable): the ablations of
docs/convergence.md are each one ``--set``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_training_modes import default_root, evaluate  # noqa: E402


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The size, data, threads and ``--set`` options of a from-scratch training script."""
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--preset", default="default", help="synthetic preset (tiny, default)")
    p.add_argument("--root", type=Path, help="dataset root (default data/synthetic[_preset])")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a DepthModel option (JSON value), e.g. lr=1e-4 or automask_warmup_steps=200",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=100, help="evaluate every N steps")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add_training_arguments(p)
    p.add_argument("--out", type=Path, help="write every evaluation to this JSON file")
    return p


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def make_data(args, seed: int):
    from mono.data.datamodule import KittiDataModule

    return KittiDataModule(
        root=str(args.root),
        split="splits",
        height=args.height,
        width=args.width,
        frame_ids=["0", "-1", "1"],
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        intrinsics="calib",
        depth="auto",
        seed=seed,
        synthesize=args.preset,
    )


def make_model(args, overrides: dict):
    from mono.module import DepthModel

    options = dict(
        pretrained=False,
        lr=5e-4,
        scheduler_step_size=10**6,
        eval_crop="none",
        eval_scaling="median",
    )
    options.update(overrides)
    return DepthModel(height=args.height, width=args.width, frame_ids=["0", "-1", "1"], **options)


def true_relative_pose(root: Path, folder: str, frame: int, offset: int) -> np.ndarray | None:
    """T_src_tgt of camera 2 from ``poses.txt`` (camera -> world), src = frame + offset."""
    from mono.evaluation.pose import read_odometry_poses

    poses = read_odometry_poses(root / folder / "poses.txt")
    if not 0 <= frame + offset < len(poses):
        return None
    return np.linalg.inv(poses[frame + offset]) @ poses[frame]


def rotation_angle(R: np.ndarray) -> float:
    """Angle in radians of a 3 x 3 rotation matrix."""
    return float(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)))


@torch.no_grad()
def pose_diagnostics(model, datamodule, root: Path, max_samples: int = 64) -> dict[str, float]:
    """Predicted vs true inter-frame motion (frame +1) on validation samples."""
    from mono.data.augment import prepare_batch

    datamodule.setup("fit")
    dataset = datamodule.datasets["val"]
    model.eval()
    pred_t, true_t, pred_r, true_r = [], [], [], []
    index = 0
    for batch in datamodule.val_dataloader():
        views = prepare_batch(batch.to(model.device), model.hparams.height, model.hparams.width)
        T = model.predict_poses(views)[:, model.source_ids.index("1")].cpu().double().numpy()
        for i in range(T.shape[0]):
            entry = dataset.entries[index + i]
            truth = true_relative_pose(root, entry.folder, entry.frame, 1)
            if truth is None:
                continue
            pred_t.append(np.linalg.norm(T[i, :3, 3]))
            true_t.append(np.linalg.norm(truth[:3, 3]))
            pred_r.append(rotation_angle(T[i, :3, :3]))
            true_r.append(rotation_angle(truth[:3, :3]))
        index += T.shape[0]
        if index >= max_samples:
            break
    model.train()
    pred_t, true_t = np.array(pred_t), np.array(true_t)
    corr = float(np.corrcoef(pred_t, true_t)[0, 1]) if pred_t.std() > 0 else 0.0
    return {
        "t_pred": float(pred_t.mean()),
        "t_true": float(true_t.mean()),
        "t_corr": corr,
        "rot_pred_deg": math.degrees(float(np.mean(pred_r))),
        "rot_true_deg": math.degrees(float(np.mean(true_r))),
    }


def train_seed(args, seed: int, overrides: dict) -> list[dict]:
    import pytorch_lightning as pl

    rows: list[dict] = []

    class Probe(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            if step % args.every and step != args.steps:
                return
            metrics, _, baseline = evaluate(pl_module, trainer.datamodule)
            pose = pose_diagnostics(pl_module, trainer.datamodule, args.root)
            pl_module.train()
            rows.append(
                {
                    "seed": seed,
                    "step": step,
                    "abs_rel": metrics["abs_rel"],
                    "baseline": baseline["abs_rel"],
                    "seconds": time.perf_counter() - start,
                    **pose,
                }
            )
            print(_format_row(rows[-1]), flush=True)

    pl.seed_everything(seed, verbose=False)
    datamodule = make_data(args, seed)
    model = make_model(args, overrides)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Probe()],
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit(model, datamodule=datamodule)
    return rows


HEADER = (
    f"{'seed':>4s} {'step':>5s} {'abs_rel':>8s} {'base':>6s} {'t pred':>7s} {'t true':>7s} "
    f"{'t corr':>6s} {'rot':>6s} {'rot true':>8s} {'min':>5s}"
)


def _format_row(r: dict) -> str:
    return (
        f"{r['seed']:4d} {r['step']:5d} {r['abs_rel']:8.4f} {r['baseline']:6.3f} "
        f"{r['t_pred']:7.4f} {r['t_true']:7.3f} {r['t_corr']:6.2f} {r['rot_pred_deg']:6.3f} "
        f"{r['rot_true_deg']:8.3f} {r['seconds'] / 60:5.1f}"
    )


def escape_step(rows: list[dict]) -> int | None:
    """First evaluated step below half the constant-depth baseline."""
    for r in rows:
        if r["abs_rel"] < 0.5 * r["baseline"]:
            return r["step"]
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.root = args.root or default_root(args.preset)
    overrides = parse_overrides(args.set)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"options: {overrides or 'defaults'}; t = translation length per frame, rot in degrees")
    print(HEADER, flush=True)
    all_rows = []
    for seed in args.seeds:
        all_rows += train_seed(args, seed, overrides)
    print("\nescape (first abs_rel below half the constant baseline):")
    for seed in args.seeds:
        rows = [r for r in all_rows if r["seed"] == seed]
        step = escape_step(rows)
        final = rows[-1]["abs_rel"] if rows else math.nan
        print(f"  seed {seed}: {'never' if step is None else f'step {step}'}, final {final:.4f}")
    if args.out:
        args.out.write_text(json.dumps({"options": overrides, "rows": all_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
