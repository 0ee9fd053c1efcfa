"""Stopping a run without losing it: signals save ``last.ckpt``; a diverging run stops early.

:class:`PreemptionCheckpoint` turns SIGTERM (preemption: clusters signal the whole process
group) and SIGINT (Ctrl-C) into a save of ``last.ckpt`` at the current step and a clean exit.
:class:`NonFiniteGuard` stops at the first non-finite loss or gradient, before the optimiser
applies it, with a message naming the step and the terms, and a diagnostic checkpoint beside
(never over) the last good ``last.ckpt``.
"""

from __future__ import annotations

import math
import os
import signal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mono.checkpointing import last_checkpoint_path


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) stopped training after a step; ``last.ckpt`` holds that step."""


class NonFiniteTrainingError(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM save ``last.ckpt`` and exit with status 0; on SIGINT save it and exit 130.

    Lightning notes SIGTERM (``trainer.received_sigterm``); in one process this callback stops
    after the current optimiser step, and under DDP Lightning itself raises on every rank at
    the next step. A first Ctrl-C is noted the same way (a second one interrupts at once,
    unsaved). Either way :meth:`on_exception` writes ``last.ckpt`` (with the position inside
    the epoch) before the process exits, so ``--ckpt_path last`` continues where it stopped.
    """

    def __init__(self) -> None:
        self.received_sigint = False
        self._deferred_sigterm = False
        self._previous_sigint = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.world_size == 1 and _in_main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._restore_sigint()

    def _on_sigint(self, signum, frame) -> None:
        if self.received_sigint:  # a second Ctrl-C: stop now
            self._restore_sigint()
            raise KeyboardInterrupt
        self.received_sigint = True
        print("SIGINT: stopping after this step (Ctrl-C again to abort unsaved)", flush=True)

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.received_sigint:
            raise TrainingInterrupted("training stopped by Ctrl-C (SIGINT)")
        # Under DDP only Lightning's own broadcast decides, so that all ranks stop together.
        if trainer.world_size == 1 and trainer.received_sigterm:
            raise SIGTERMException

    def on_validation_batch_end(self, trainer, pl_module, *args, **kwargs) -> None:
        # Lightning stops a validation as soon as SIGTERM arrives, and a run resumed from that
        # moment would never validate the epoch. In one process the validation is finished
        # first; the signal is handed back once it is over, so the run stops right after it.
        if trainer.world_size == 1 and trainer.state.fn == "fit" and trainer.received_sigterm:
            if not self._deferred_sigterm:
                print("SIGTERM: finishing this validation, then saving", flush=True)
            self._deferred_sigterm = True
            trainer._signal_connector.received_sigterm = False

    def on_validation_end(self, trainer, pl_module) -> None:
        # At an epoch's end, only after the epoch-end save (see on_train_epoch_end).
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._resume_deferred_sigterm(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Runs before the checkpoint callbacks' epoch-end saves; Lightning raises after them.
        self._resume_deferred_sigterm(trainer)

    def _resume_deferred_sigterm(self, trainer) -> None:
        if self._deferred_sigterm:
            self._deferred_sigterm = False
            trainer._signal_connector.received_sigterm = True

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_sigint()
        if isinstance(exception, SIGTERMException):
            name = "SIGTERM"
        elif isinstance(exception, TrainingInterrupted):
            name = "SIGINT"
        else:
            return
        # Under DDP, Lightning raises on all ranks together only in the training loop; saving
        # (a collective call) anywhere else could wait forever on a rank that is not saving.
        if trainer.world_size > 1 and not trainer.training:
            return
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        rank_zero_info(f"{name}: saved {path} at step {trainer.global_step}; exiting")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class NonFiniteGuard(pl.Callback):
    """Checks the loss terms and the gradient norms of every step before the optimiser runs.

    The check costs one device synchronisation per step. A bad step is skipped (gradients
    dropped, so the optimiser leaves every parameter and its moments as they were) while at
    most ``max_skipped`` bad steps have been seen; the next one raises
    :class:`NonFiniteTrainingError` after writing ``nonfinite-step=<S>.ckpt`` (the weights that
    produced it) beside ``last.ckpt``. ``S`` counts optimiser steps from 1, so ``last.ckpt``
    written at step S - 1 or earlier is the last good state.

    The number of bad steps to skip is the model's ``max_skipped_nonfinite`` (0 if it has
    none: stop at the first).
    """

    def __init__(self) -> None:
        self.max_skipped = 0
        self.seen = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.max_skipped = int(pl_module.hparams.get("max_skipped_nonfinite", 0))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        terms = getattr(pl_module, "last_loss_terms", None) or {}
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        grads = [g for g in grads if g is not None]
        values = [t.detach().float().reshape(()) for t in terms.values()]
        if grads:
            values.append(torch.stack(torch._foreach_norm(grads)).float().norm())
        if not values or bool(torch.isfinite(torch.stack(values)).all()):
            return
        self.seen += 1
        step = trainer.global_step + 1
        bad = [name for name, t in terms.items() if not math.isfinite(float(t))]
        what = f"loss terms {', '.join(bad)}" if bad else "gradients (the loss terms are finite)"
        if self.seen <= self.max_skipped:
            rank_zero_warn(
                f"skipping non-finite step {step}: {what} "
                f"({self.seen} of at most {self.max_skipped} skipped)"
            )
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
            return
        path = os.path.join(
            os.path.dirname(last_checkpoint_path(trainer)), f"nonfinite-step={step}.ckpt"
        )
        trainer.save_checkpoint(path)
        values = ", ".join(f"{name}={float(t):.4g}" for name, t in terms.items())
        raise NonFiniteTrainingError(
            f"non-finite training at step {step} ({_ordinal(self.seen)} non-finite step): "
            f"{what} [{values}]; the weights that produced it are in {path}; "
            f"{os.path.basename(last_checkpoint_path(trainer))} holds the last good state. "
            "Lower model.lr, check the data, or allow a few bad batches with "
            "model.max_skipped_nonfinite"
        )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
