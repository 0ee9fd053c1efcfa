"""Lightning callbacks: pictures of depth and masks, throughput, preemption-safe checkpoints."""

from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from mono.visualize import colorize, panels_from_detail


class ImageLogger(pl.Callback):
    """Every ``every_n_steps`` training steps, log the loss's view of the current batch.

    Panels (first ``max_images`` samples): target, disparity (magma), auto-mask, index of the
    winning source in the per-pixel minimum, and the first source warped into the target view.
    Works with TensorBoard and wandb loggers (any other logger is skipped).

    Args:
        every_n_steps: logging period in optimiser steps.
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
        with torch.no_grad():
            n = min(self.max_images, batch.color.shape[0])
            _, _, detail = pl_module.compute_loss(_first(batch, n), keep=True)
        pl_module.train(was_training)
        panels = panels_from_detail(detail)
        for logger in trainer.loggers:
            _log_panels(logger, panels, step)


def _first(views, n: int):
    import dataclasses

    return dataclasses.replace(
        views,
        **{
            f.name: getattr(views, f.name)[:n]
            for f in dataclasses.fields(views)
            if isinstance(getattr(views, f.name), Tensor)
        },
    )


def _log_panels(logger, panels: dict[str, Tensor], step: int) -> None:
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    if isinstance(logger, TensorBoardLogger):
        for name, images in panels.items():
            logger.experiment.add_images(f"images/{name}", images, step, dataformats="NCHW")
    elif isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log(
            {
                f"images/{name}": [
                    wandb.Image(img.permute(1, 2, 0).cpu().numpy()) for img in images
                ]
                for name, images in panels.items()
            },
            step=step,
        )


class Throughput(pl.Callback):
    """Logs training images per second (``train/images_per_sec``, also on the progress bar)."""

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._start is None:
            return
        elapsed = time.perf_counter() - self._start
        n = batch.color.shape[0] * trainer.world_size
        pl_module.log("images_per_sec", n / max(elapsed, 1e-9), prog_bar=True, logger=False)
        pl_module.log("train/images_per_sec", n / max(elapsed, 1e-9), prog_bar=False)


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM (preemption), save ``last.ckpt`` after the current step and stop cleanly.

    The checkpoint is written through the trainer's checkpoint IO, so it is atomic and records
    the position inside the epoch; ``mono fit ... --ckpt_path last`` continues from it.
    """

    def __init__(self) -> None:
        self._requested = False
        self._previous = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and hasattr(signal, "SIGTERM"):
            try:
                self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            except ValueError:  # not the main thread
                self._previous = None

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum, frame) -> None:
        self._requested = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._requested:
            return
        path = _last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        rank_zero_info(f"SIGTERM received: saved {path}; stopping")
        trainer.should_stop = True


def _last_checkpoint_path(trainer) -> str:
    ckpt = trainer.checkpoint_callback
    folder = getattr(ckpt, "dirpath", None) or os.path.join(trainer.default_root_dir, "checkpoints")
    return os.path.join(folder, "last.ckpt")


def disparity_picture(disp: Tensor) -> Tensor:
    """(B, 1, H, W) disparity -> (B, 3, H, W) magma picture (vmax at the 95th percentile)."""
    return colorize(disp, "magma", percentile=95.0)
