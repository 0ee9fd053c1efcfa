"""Lightning callbacks and plugins that make runs watchable and survivable.

Watching: :class:`ImageLogger` (what the loss sees), :class:`Throughput` (images/s).
Surviving: :class:`LastCheckpoint` (``last.ckpt`` every N steps and every epoch),
:class:`PreemptionCheckpoint` (save and exit on SIGTERM) and :class:`AtomicCheckpointIO` (a
checkpoint file is either the old complete one or the new complete one, never half of one).
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
import zipfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import CheckpointIO, TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor

from mono.checkpoint import CheckpointError
from mono.visualize import panels_from_detail

# ------------------------------------------------------------------------------------ watching


class ImageLogger(pl.Callback):
    """Every ``every_n_steps`` training steps, log the loss's view of the current batch.

    Panels (first ``max_images`` samples): ``target``, ``disparity`` (magma), ``automask``,
    ``winner`` (index of the winning term of the per-pixel minimum) and ``warped_source`` (the
    first source warped into the target view), under ``images/<panel>``. Written to TensorBoard
    and wandb loggers (others are skipped), on global rank 0 only. The extra forward pass runs
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
            _, _, detail = pl_module.compute_loss(_first(batch, n), keep=True)
        pl_module.train(was_training)
        panels = {name: images.cpu() for name, images in panels_from_detail(detail).items()}
        for logger in trainer.loggers:
            log_images(logger, panels, step)


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


# ------------------------------------------------------------------------------------ surviving


class LastCheckpoint(ModelCheckpoint):
    """Keeps ``<dirpath>/last.ckpt`` current for ``--ckpt_path last``.

    Written every ``every_n_train_steps`` optimiser steps (mid-epoch; the data module records
    the position inside the epoch) and at the end of every epoch, after its validation. Lightning's
    own ``save_last`` on a monitored checkpoint only refreshes ``last`` when the metric improves,
    hence this callback; use a plain ``ModelCheckpoint(monitor="val/abs_rel")`` beside it for
    the best model.

    Args:
        dirpath: checkpoint folder (default ``<default_root_dir>/checkpoints``).
        every_n_train_steps: period of mid-epoch saves (0 = only at epoch ends).
        save_top_k: periodic checkpoints kept besides ``last.ckpt``, named by ``filename``
            (0 = none, -1 = all, k = the newest k).
        filename: name pattern of those, e.g. ``"step-{step}"``.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_train_steps: int = 0,
        save_top_k: int = 0,
        filename: str | None = None,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            save_top_k=save_top_k,
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=0,  # epoch ends are handled below
            save_last=True,
            enable_version_counter=False,  # one last.ckpt, rewritten in place
        )

    def on_validation_end(self, trainer, pl_module) -> None:
        """Nothing: the epoch-end save happens in ``on_train_epoch_end``, after validation."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Skipped when this step was just saved mid-epoch (resuming then re-runs validation).
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM (preemption), save ``last.ckpt`` and exit with status 0.

    Lightning notes the signal (``trainer.received_sigterm``). In one process this callback
    stops after the current optimiser step; under DDP Lightning itself raises on every rank at
    the next step. Either way :meth:`on_exception` writes ``last.ckpt`` (with the position inside
    the epoch) before the process exits, so ``--ckpt_path last`` continues where it stopped.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Under DDP only Lightning's own broadcast decides, so that all ranks stop together.
        if trainer.world_size == 1 and trainer.received_sigterm:
            raise SIGTERMException

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        # Under DDP, Lightning raises on all ranks together only in the training loop; saving
        # (a collective call) anywhere else could wait forever on a rank that is not saving.
        if trainer.world_size > 1 and not trainer.training:
            return
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        rank_zero_info(f"SIGTERM: saved {path} at step {trainer.global_step}; exiting")


def last_checkpoint_path(trainer) -> str:
    """``last.ckpt`` in the folder of the trainer's first checkpoint callback."""
    folder = None
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            folder = callback.dirpath
            break
    folder = folder or os.path.join(trainer.default_root_dir, "checkpoints")
    return os.path.join(folder, ModelCheckpoint.CHECKPOINT_NAME_LAST + ".ckpt")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint files that are never half-written, and a clear error for broken ones.

    Saving writes ``.<name>.<random>.partial`` in the target's folder, fsyncs it, renames it
    over the target with ``os.replace`` (atomic on POSIX within one file system) and fsyncs the
    folder. A process killed mid-save leaves the previous file intact and at most a ``.partial``
    file, which ``--ckpt_path last`` ignores (it only matches ``last*.ckpt``). Lightning's own
    writer stages the file in the system temp folder and moves it, which degrades to a plain
    copy when that folder is on another file system.

    Loading raises :class:`mono.checkpoint.CheckpointError` for a corrupt or truncated file.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.partial"):  # left by a killed save
            stale.unlink(missing_ok=True)
        partial = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.partial"
        try:
            with open(partial, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None) -> dict:
        if Path(path).is_file():
            check_checkpoint_file(path)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def check_checkpoint_file(path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a complete, intact torch zip archive.

    Reads the whole file once and checks every member's CRC, which also catches damage that
    ``torch.load`` would read through (its zip reader skips the checksums).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        problem = None if bad is None else f"member {bad} fails its CRC check"
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        problem = f"not a complete zip archive: {err}"
    if problem is not None:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({problem}); "
            "use another checkpoint (e.g. last.ckpt or an earlier best-*.ckpt)"
        )


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def with_atomic_checkpoint_io(plugins) -> list:
    """Trainer ``plugins`` plus an :class:`AtomicCheckpointIO` unless one CheckpointIO is given."""
    if plugins is None:
        plugins = []
    elif not isinstance(plugins, list | tuple):
        plugins = [plugins]
    if any(isinstance(p, CheckpointIO) for p in plugins):
        return list(plugins)
    return [*plugins, AtomicCheckpointIO()]
