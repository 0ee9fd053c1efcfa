"""Checkpoint files that survive: one run per folder, atomic writes, ``last.ckpt`` kept current.

The run folder is ``trainer.default_root_dir``: checkpoints go to ``<run>/checkpoints`` and the
loggers write below ``<run>`` (the CLI links their ``save_dir`` to it), so one option moves a
whole run. :func:`check_run_folder` refuses to start a new run over an earlier one, and
:class:`AtomicCheckpointIO` writes every file so that a crash leaves the previous one whole.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch
from lightning_fabric.plugins import CheckpointIO, TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from mono.checkpoint import check_checkpoint_file

CHECKPOINT_FOLDER = "checkpoints"
PARTIAL_PATTERN = ".*.partial"  # what AtomicCheckpointIO writes before renaming


class RunFolderError(ValueError):
    """A new run would write over an earlier run's files."""


def checkpoint_folder(default_root_dir: str | os.PathLike) -> Path:
    """Where every checkpoint of the run in ``default_root_dir`` goes."""
    return Path(default_root_dir) / CHECKPOINT_FOLDER


def place_checkpoints(trainer) -> None:
    """Give each checkpoint callback without a ``dirpath`` the run's checkpoint folder.

    Lightning's own default would follow the logger (``<save_dir>/<name>/version_N``), which
    changes every run and so would hide ``last.ckpt`` from ``--ckpt_path last``.
    """
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(checkpoint_folder(trainer.default_root_dir))


def check_run_folder(trainer) -> None:
    """Refuse a fresh fit (no ``--ckpt_path``) in a folder that already holds checkpoints.

    Raises:
        RunFolderError: naming the folder, one of its checkpoints and both ways on.
    """
    folders = {
        Path(cb.dirpath)
        for cb in trainer.checkpoint_callbacks
        if isinstance(cb, ModelCheckpoint) and cb.dirpath
    }
    for folder in sorted(folders):
        existing = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
        if existing:
            names = [p.name for p in existing]
            shown = "last.ckpt" if "last.ckpt" in names else names[0]
            root = Path(trainer.default_root_dir)
            where = folder.relative_to(root) if folder.is_relative_to(root) else folder
            owner = root if folder.is_relative_to(root) else folder
            raise RunFolderError(
                f"{owner} already holds a run ({Path(where) / shown}): continue it with "
                "--ckpt_path last, or start a new run with --trainer.default_root_dir "
                "<new folder>"
            )


def remove_partial_files(trainer) -> list[Path]:
    """Delete the ``.partial`` files that killed saves left in the checkpoint folders."""
    removed = []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            folder = Path(callback.dirpath)
            if folder.is_dir():
                for stale in folder.glob(PARTIAL_PATTERN):
                    stale.unlink(missing_ok=True)
                    removed.append(stale)
    return removed


class LastCheckpoint(ModelCheckpoint):
    """Keeps ``<dirpath>/last.ckpt`` current for ``--ckpt_path last``.

    Written every ``every_n_train_steps`` optimiser steps (mid-epoch; the data module records
    the position inside the epoch) and at the end of every epoch, after its validation. The
    step that ends an epoch is saved only then, so that no checkpoint holds a finished epoch
    whose validation has not run. Never written under ``fast_dev_run``. Lightning's own
    ``save_last`` on a monitored checkpoint only refreshes ``last`` when the metric improves,
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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        """Nothing: the epoch-end save happens in ``on_train_epoch_end``, after validation."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        # Lightning saves `last` here even under fast_dev_run; a smoke test must not.
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)


def last_checkpoint_path(trainer) -> str:
    """``last.ckpt`` in the folder of the trainer's first checkpoint callback."""
    folder = None
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            folder = callback.dirpath
            break
    folder = folder or checkpoint_folder(trainer.default_root_dir)
    return os.path.join(folder, ModelCheckpoint.CHECKPOINT_NAME_LAST + ".ckpt")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint files that are never half-written, and a clear error for broken ones.

    Saving writes ``.<name>.<random>.partial`` in the target's folder, fsyncs it, renames it
    over the target with ``os.replace`` (atomic on POSIX within one file system) and fsyncs the
    folder. A process killed mid-save leaves the previous file intact and at most a ``.partial``
    file, which ``--ckpt_path last`` ignores (it only matches ``last*.ckpt``) and the next fit
    removes. Lightning's own writer stages the file in the system temp folder and moves it,
    which degrades to a plain copy when that folder is on another file system.

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
