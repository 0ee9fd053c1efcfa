"""Training runs in subprocesses for the fault-injection tests, and callbacks they load.

Each run is ``python -m mono.cli fit --config <json>`` on the tiny synthetic drives with a
2-epoch x 3-step schedule (6 samples, batch 2), so a run takes seconds after start-up.
Callbacks defined here are loaded by the subprocesses as ``runs.<Name>`` (``PYTHONPATH``
holds this folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


class Stall(pl.Callback):
    """After optimiser step ``at_step`` write ``marker`` and wait (at most 60 s) to be signalled.

    ``during``: ``"train"`` stalls after the training batch, ``"val"`` stalls inside the first
    validation batch after that step.
    """

    def __init__(self, at_step: int, marker: str, during: str = "train") -> None:
        self.at_step = at_step
        self.marker = marker
        self.during = during

    def _stall(self, trainer) -> None:
        Path(self.marker).write_text(str(trainer.global_step))
        deadline = time.monotonic() + 60
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.02)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.during == "train" and trainer.global_step == self.at_step:
            self._stall(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        if self.during == "val" and trainer.global_step == self.at_step and batch_idx == 0:
            self._stall(trainer)


class RecordValidation(pl.Callback):
    """Appends ``{"epoch", "step", "abs_rel"}`` to a JSON-lines file after every validation."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val/abs_rel")
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "abs_rel": None if value is None else float(value),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def write_config(
    path: Path,
    data_root: Path,
    run_dir: Path,
    *,
    callbacks: list[dict] | None = None,
    workers: int = 0,
    every_n_train_steps: int = 2,
    model: dict | None = None,
    data: dict | None = None,
    trainer: dict | None = None,
) -> Path:
    """A run in ``run_dir``: 2 epochs x 3 steps; last.ckpt every N steps and at epoch ends."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 2,
            "limit_val_batches": 2,  # an int; jsonargparse would read 1 as 1.0 = all batches
            "num_sanity_val_steps": 0,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(run_dir),
            "callbacks": [
                {
                    "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                    "init_args": {"filename": "best-{step}", "monitor": "val/abs_rel"},
                },
                {
                    "class_path": "mono.callbacks.LastCheckpoint",
                    "init_args": {"every_n_train_steps": every_n_train_steps},
                },
                *(callbacks or []),
            ],
            **(trainer or {}),
        },
        "model": {
            "pretrained": False,
            "scheduler_step_size": 1,
            "eval_crop": "none",
            **(model or {}),
        },
        "data": {
            "root": str(data_root),
            "split": "splits",
            "height": 64,
            "width": 192,
            "batch_size": 2,
            "num_workers": workers,
            "intrinsics": "calib",
            "limit_train_samples": 6,
            **(data or {}),
        },
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def start(
    config: Path, *args: str, new_session: bool = False, log_path: Path | None = None
) -> subprocess.Popen:
    """``mono fit`` in a subprocess, its output in ``log_path`` (default ``<config>.log``).

    ``new_session`` puts it in a process group of its own (as a cluster job is), so a test
    can signal the whole group: the main process and its DataLoader workers.
    """
    env = dict(os.environ, MONO_NUM_THREADS="1", PYTHONPATH=str(HERE))
    log_path = log_path or config.with_suffix(".log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mono.cli", "fit", "--config", str(config), *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
    proc.log = log_path
    return proc


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    """Exit code and output of a run."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"run still going after {timeout} s") from None
    return code, proc.log.read_text()


def run(config: Path, *args: str, timeout: float = 180) -> tuple[int, str]:
    return finish(start(config, *args), timeout)


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {marker.name}:\n{proc.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {marker.name} after {timeout} s")
        time.sleep(0.05)


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    os.killpg(os.getpgid(proc.pid), signum)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_training_state(a: dict, b: dict) -> None:
    """Same step, epoch, weights, optimiser moments and schedule, bit for bit."""
    assert (a["global_step"], a["epoch"]) == (b["global_step"], b["epoch"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    different = [
        k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])
    ]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    for sa, sb in zip(
        a["optimizer_states"][0]["state"].values(),
        b["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["lr_schedulers"] == b["lr_schedulers"]


def all_finite(checkpoint: dict) -> bool:
    return all(
        torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point()
    )


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}
