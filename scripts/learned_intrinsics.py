"""Does monocular training from scratch learn the camera of the synthetic drives?

Trains the monocular model (frames 0 -1 1, ResNet-18 from scratch) on the synthetic drives with
``learn_intrinsics=True`` from a wrong field of view (``--initial-hfov``; the drives' camera has
Monodepth2's average KITTI K, about 81.5 degrees) for ``--steps`` optimiser steps, and every
``--every`` steps prints the learned focal lengths and principal point, normalised and in
pixels at the training size, beside the drives' true ones, with the held-out test drive's
median-scaled abs_rel (as validation scores it) and the constant-depth baseline's.

The drives turn but never pitch, and forward motion moves pixels independently of the focal
length: the loss teaches fx, and fy follows it through the square pixels of the recorded frames
(``model.intrinsics_square_pixels``, the default; tests/test_learned_intrinsics.py).

    python scripts/learned_intrinsics.py --steps 3000 --every 250 --initial-hfov 60
    python scripts/learned_intrinsics.py --steps 20 --every 10 --preset tiny --batch-size 4

``--set key=value`` overrides any DepthModel option (repeatable), e.g. ``--set lr=1e-4``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_training_modes import default_root, evaluate  # noqa: E402
from convergence import (  # noqa: E402
    add_training_arguments,
    make_data,
    make_model,
    parse_overrides,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=250, help="report every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--initial-hfov", type=float, default=60.0, help="degrees the camera starts from"
    )
    add_training_arguments(p)
    p.add_argument("--out", type=Path, help="write every report to this JSON file")
    return p


def true_camera(datamodule) -> dict[str, float]:
    """The drives' normalised K, as the validation reader gives it (never flipped)."""
    datamodule.setup("fit")
    K = datamodule.datasets["val"][0].K
    return {"fx_norm": float(K[0, 0]), "fy_norm": float(K[1, 1]),
            "cx_norm": float(K[0, 2]), "cy_norm": float(K[1, 2])}  # fmt: skip


HEADER = (
    f"{'step':>5s} {'abs_rel':>8s} {'base':>6s} {'fx':>6s} {'true':>6s} {'fy':>6s} {'true':>6s} "
    f"{'fx px':>7s} {'true':>7s} {'fy px':>7s} {'true':>7s} {'cx':>6s} {'cy':>6s} {'min':>5s}"
)


def format_row(r: dict, truth: dict, height: int, width: int) -> str:
    return (
        f"{r['step']:5d} {r['abs_rel']:8.4f} {r['baseline']:6.3f} "
        f"{r['fx_norm']:6.3f} {truth['fx_norm']:6.3f} {r['fy_norm']:6.3f} {truth['fy_norm']:6.3f} "
        f"{r['fx_norm'] * width:7.1f} {truth['fx_norm'] * width:7.1f} "
        f"{r['fy_norm'] * height:7.1f} {truth['fy_norm'] * height:7.1f} "
        f"{r['cx_norm']:6.3f} {r['cy_norm']:6.3f} {r['seconds'] / 60:5.1f}"
    )


def train(args, overrides: dict) -> tuple[list[dict], dict]:
    import pytorch_lightning as pl

    rows: list[dict] = []
    stdout = sys.stdout  # Lightning's own prints go to stderr during fit, the table stays here
    pl.seed_everything(args.seed, verbose=False)
    datamodule = make_data(args, args.seed)
    truth = true_camera(datamodule)
    options = {"learn_intrinsics": True, "initial_hfov_deg": args.initial_hfov, **overrides}
    model = make_model(args, options)

    def report(pl_module, step: int) -> None:
        metrics, _, baseline = evaluate(pl_module, datamodule)
        pl_module.train()
        rows.append(
            {
                "step": step,
                "abs_rel": metrics["abs_rel"],
                "baseline": baseline["abs_rel"],
                "seconds": time.perf_counter() - start,
                **pl_module.intrinsics.describe(),
            }
        )
        print(format_row(rows[-1], truth, args.height, args.width), file=stdout, flush=True)

    class Probe(pl.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            report(pl_module, 0)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            if step % args.every == 0 or step == args.steps:
                report(pl_module, step)

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
    return rows, truth


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.root = args.root or default_root(args.preset)
    overrides = parse_overrides(args.set)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(
        f"options: {overrides or 'defaults'}; start hfov {args.initial_hfov:g} deg; "
        f"fx, fy normalised (px at {args.width}x{args.height}); cx, cy normalised"
    )
    print(HEADER, flush=True)
    rows, truth = train(args, overrides)
    final = rows[-1]
    error = 100 * (final["fx_norm"] / truth["fx_norm"] - 1)
    print(f"\nfinal fx {final['fx_norm']:.4f} vs true {truth['fx_norm']:.4f} ({error:+.1f} %)")
    if args.out:
        args.out.write_text(json.dumps({"options": overrides, "truth": truth, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
