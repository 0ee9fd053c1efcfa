"""Lightning callbacks that make runs watchable: :class:`ImageLogger` (what the loss sees),
:class:`Throughput` (images/s) and :class:`RunSummary` (where a fit writes, what it left).

The callbacks that make runs survive live in :mod:`mono.checkpointing` (``LastCheckpoint``,
atomic files, the run folder) and :mod:`mono.stopping` (signals, the non-finite guard); the
names below keep configs that name them here working.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import pytorch_lightning as pl
import torch
from torch import Tensor

from mono.checkpointing import (  # noqa: F401 (re-exported for configs)
    AtomicCheckpointIO,
    LastCheckpoint,
    check_checkpoint_file,
    last_checkpoint_path,
    with_atomic_checkpoint_io,
)
from mono.stopping import NonFiniteGuard, PreemptionCheckpoint  # noqa: F401
from mono.visualize import panels_from_detail, validation_panels

# ------------------------------------------------------------------------------------ watching


class ImageLogger(pl.Callback):
    """Every ``every_n_steps`` training steps, log the loss's view of the current batch.

    Panels (first ``max_images`` samples, :func:`mono.visualize.panels_from_detail`):
    ``target``, ``disparity`` (magma) and ``disparity_scale1..3``, ``automask``, ``winner``
    (the winning candidate of the per-pixel minimum, with its legend beneath) and
    ``warped_source`` (the first source warped into the target view), under
    ``images/<panel>``; after every validation, ``images/val_image``, ``val_prediction``,
    ``val_ground_truth`` and ``val_error`` of its first batch. Written to TensorBoard and wandb
    loggers (others are skipped), on global rank 0 only. The extra forward pass runs
    on a forked RNG, so logging images never changes the trained weights.

    Args:
        every_n_steps: logging period in optimiser steps (0 disables).
        max_images: samples per panel.
    """

    def __init__(self, every_n_steps: int = 250, max_images: int = 4) -> None:
        self.every_n_steps = every_n_steps
        self.max_images = max_images

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps <= 0 or step % self.every_n_steps != 0 or not trainer.is_global_zero:
            return
        if not pl_module.self_supervised or not trainer.loggers:
            return
        was_training = pl_module.training
        pl_module.eval()
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            n = min(self.max_images, batch.color.shape[0])
            detail = pl_module.compute_loss(_first(batch, n), keep=True).detail
        pl_module.train(was_training)
        panels = {name: images.cpu() for name, images in panels_from_detail(detail).items()}
        for logger in trainer.loggers:
            log_images(logger, panels, step)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        """The first validation batch of every validation: image, prediction, ground truth and
        error map (``images/val_*``, see :func:`mono.visualize.validation_panels`)."""
        if batch_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if not trainer.loggers or getattr(batch, "depth_gt", None) is None:
            return
        from mono.metrics import resize_into_padding

        views = _first(batch, min(self.max_images, batch.color.shape[0]))
        with torch.no_grad():
            depth = pl_module.predict_depth(views.color[:, 0])
        size = views.depth_gt.shape[-2:]
        panels = validation_panels(
            resize_into_padding(views.color[:, 0], views.sizes, size),
            resize_into_padding(depth, views.sizes, size),
            views.depth_gt,
        )
        panels = {name: images.cpu() for name, images in panels.items()}
        for logger in trainer.loggers:
            log_images(logger, panels, trainer.global_step)


def _first(views, n: int):
    """The first ``n`` samples of a dataclass of batched tensors."""
    return dataclasses.replace(
        views,
        **{
            f.name: getattr(views, f.name)[:n]
            for f in dataclasses.fields(views)
            if isinstance(getattr(views, f.name), Tensor)
        },
    )


def log_images(logger, panels: dict[str, Tensor], step: int) -> None:
    """Write (N, 3, H, W) pictures in [0, 1] as ``images/<name>`` to TensorBoard or wandb.

    Both receive 8-bit pictures, ``round(x * 255)``: wandb casts float arrays to uint8 without
    scaling (0.7 -> 0, a black picture), and TensorBoard truncates where this rounds.
    """
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    if isinstance(logger, TensorBoardLogger):
        for name, images in panels.items():
            pictures = to_uint8(images)
            logger.experiment.add_images(f"images/{name}", pictures, step, dataformats="NCHW")
    elif isinstance(logger, WandbLogger):
        for name, images in panels.items():
            pictures = [img.permute(1, 2, 0).numpy() for img in to_uint8(images)]
            logger.log_image(f"images/{name}", pictures, step=step)


def to_uint8(images: Tensor) -> Tensor:
    """Pictures in [0, 1] (any shape) -> uint8 in [0, 255] on the CPU, rounded to nearest."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


class Throughput(pl.Callback):
    """Logs training images per second, data loading included (``train/images_per_sec``).

    Measured from one batch end to the next (the first batch of an epoch from the epoch
    start), over all processes: per-process batch x ``trainer.world_size``. Also shown on the
    progress bar as ``img/s``.
    """

    def __init__(self) -> None:
        self._last: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            n = batch.color.shape[0] * trainer.world_size
            rate = n / max(now - self._last, 1e-9)
            pl_module.log("img/s", rate, prog_bar=True, logger=False, batch_size=1)
            pl_module.log("train/images_per_sec", rate, batch_size=1)
        self._last = now


class RunSummary(pl.Callback):
    """Says where a fit writes (checkpoints, logs) when it starts and what it left when it ends:
    the best checkpoint with its score, and ``last.ckpt``; after a test, the test metrics beside
    the constant-depth baseline's."""

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        folder = os.path.dirname(last_checkpoint_path(trainer))
        logs = [logger.log_dir or logger.save_dir for logger in trainer.loggers]
        where = f"checkpoints: {folder}" if trainer.checkpoint_callbacks else "no checkpoints"
        print(f"{where}; logs: {', '.join(map(str, logs)) or 'none'}", flush=True)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        lines = [f"fit done at step {trainer.global_step}"]
        for callback in trainer.checkpoint_callbacks:
            best = getattr(callback, "best_model_path", "")
            if callback.monitor and best:
                score = float(callback.best_model_score)
                lines.append(f"best {callback.monitor} {score:.4f}: {best}")
        last = last_checkpoint_path(trainer)
        if os.path.isfile(last):
            lines.append(f"last: {last} (continue with --ckpt_path last)")
        print("\n".join(lines), flush=True)

    def on_test_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            table = test_table(trainer.callback_metrics)
            if table:
                print("\n" + table, flush=True)


def test_table(metrics: dict) -> str:
    """abs_rel, rmse and a1 of the model and of the constant-depth baseline, and how much lower
    the model's abs_rel is; empty without test metrics."""
    if "test/abs_rel" not in metrics:
        return ""
    rows = [("model", "test/"), ("constant depth (median-scaled)", "test/baseline_")]
    lines = [f"{'':32s} {'abs_rel':>8s} {'rmse':>8s} {'a1':>8s}"]
    for label, prefix in rows:
        vals = [float(metrics.get(prefix + k, math.nan)) for k in ("abs_rel", "rmse", "a1")]
        lines.append(f"{label:32s} " + " ".join(f"{v:8.4f}" for v in vals))
    model_abs = float(metrics["test/abs_rel"])
    base_abs = float(metrics.get("test/baseline_abs_rel", math.nan))
    lines.append(f"abs_rel {100 * (1 - model_abs / base_abs):.1f}% lower than the baseline")
    return "\n".join(lines)
