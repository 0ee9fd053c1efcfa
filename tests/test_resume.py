"""Runs that survive: atomic checkpoints, clear errors for broken ones, exact resume.

The end-to-end test trains in ``python -m mono.cli fit`` subprocesses, stops one with SIGTERM
and another with SIGKILL, resumes each with ``--ckpt_path last`` and requires the final weights
to equal an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from mono.callbacks import AtomicCheckpointIO, with_atomic_checkpoint_io
from mono.checkpoint import CheckpointError
from mono.module import rng_states, set_rng_states

REPO = Path(__file__).resolve().parents[1]


class Unpicklable:
    """Fails half-way through ``torch.save``, after the tensors before it were written."""

    def __reduce__(self):
        raise RuntimeError("simulated crash while writing")


# ------------------------------------------------------------------------ atomic writes


def test_failed_save_keeps_the_previous_file(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    big = {"state_dict": {"w": torch.zeros(100_000)}, "crash": Unpicklable()}
    with pytest.raises(RuntimeError, match="simulated crash"):
        io.save_checkpoint(big, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no partial left
    loaded = io.load_checkpoint(path)
    assert loaded["global_step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))


def test_last_ignores_a_partial_file_left_by_a_killed_save(tmp_path):
    io = AtomicCheckpointIO()
    folder = tmp_path / "ck"
    io.save_checkpoint({"global_step": 4}, folder / "last.ckpt")
    partial = folder / ".last.ckpt.0123456789ab.partial"
    partial.write_bytes(b"PK\x03\x04 half a zip")  # newer than last.ckpt
    callback = ModelCheckpoint(dirpath=folder)
    assert callback._find_last_checkpoints(trainer=None) == {str(folder / "last.ckpt")}
    io.save_checkpoint({"global_step": 6}, folder / "last.ckpt")
    assert not partial.exists()  # the next save of the same file clears it
    assert io.load_checkpoint(folder / "last.ckpt")["global_step"] == 6


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bitflip"])
def test_broken_checkpoint_gives_a_clear_error(tmp_path, damage):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.arange(10_000.0)}}, path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint")
    else:  # one flipped bit inside the tensor data, which torch.load would not notice
        data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"checkpoint .*last\.ckpt is corrupt or truncated"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_cli_names_a_broken_ckpt_path_before_anything_runs(tmp_path):
    from mono.cli import main

    broken = tmp_path / "last.ckpt"
    broken.write_bytes(b"PK\x03\x04" + bytes(100))  # the start of a zip, cut short
    with pytest.raises(CheckpointError, match=f"checkpoint {broken} is corrupt or truncated"):
        main(["fit", "--data.root", str(tmp_path), "--ckpt_path", str(broken)])


def test_cli_plugins_get_atomic_io_unless_one_is_configured():
    assert [type(p) for p in with_atomic_checkpoint_io(None)] == [AtomicCheckpointIO]
    own = AtomicCheckpointIO()
    assert with_atomic_checkpoint_io([own]) == [own]
    assert with_atomic_checkpoint_io("bf16-mixed")[0] == "bf16-mixed"


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)  # noqa: NPY002 (the legacy global state is what is saved)
    random.seed(3)
    torch.save({"rng_states": rng_states()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    torch.manual_seed(9), np.random.seed(9), random.seed(9)  # noqa: NPY002
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng_states"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])  # noqa: NPY002
    assert random.random() == expected[2]


# ------------------------------------------------------------------------ kill and resume


class Stall(pl.Callback):
    """Used inside the subprocess runs: after optimiser step ``at_step``, write ``marker``
    and wait (at most 60 s) for the test to signal the process."""

    def __init__(self, at_step: int, marker: str) -> None:
        self.at_step = at_step
        self.marker = marker

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.at_step:
            return
        Path(self.marker).write_text(str(trainer.global_step))
        deadline = time.monotonic() + 60
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.02)


def _config(path: Path, data_root: Path, run_dir: Path, stall: dict | None = None) -> Path:
    """A 2-epoch x 3-step run; last.ckpt every 2 steps and at epoch ends (steps 2, 3, 4, 6)."""
    ck = str(run_dir / "checkpoints")
    callbacks = [
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {"dirpath": ck, "filename": "best-{step}", "monitor": "val/abs_rel"},
        },
        {
            "class_path": "mono.callbacks.LastCheckpoint",
            "init_args": {"dirpath": ck, "every_n_train_steps": 2},
        },
    ]
    if stall is not None:
        callbacks.append({"class_path": "test_resume.Stall", "init_args": stall})
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
            "callbacks": callbacks,
        },
        "model": {"pretrained": False, "scheduler_step_size": 1, "eval_crop": "none"},
        "data": {
            "root": str(data_root),
            "split": "splits",
            "height": 64,
            "width": 192,
            "batch_size": 2,
            "num_workers": 0,
            "intrinsics": "calib",
            "limit_train_samples": 6,
        },
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _start(config: Path, *args: str) -> subprocess.Popen:
    """``mono fit`` in a subprocess, its output in ``<config>.log``."""
    env = dict(os.environ, MONO_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"))
    with open(config.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mono.cli", "fit", "--config", str(config), *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log = config.with_suffix(".log")
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"run still going after {timeout} s") from None
    return code, proc.log.read_text()


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {marker.name}:\n{proc.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {marker.name} after {timeout} s")
        time.sleep(0.05)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_training_state(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
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


@pytest.mark.slow
def test_sigterm_and_sigkill_then_resume_match_an_uninterrupted_run(synthetic_root, tmp_path):
    procs = [_start(_config(tmp_path / "ref.yaml", synthetic_root, tmp_path / "ref"))]
    try:
        _interrupt_twice_and_finish(synthetic_root, tmp_path, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reference = tmp_path / "ref" / "checkpoints" / "last.ckpt"
    _assert_same_training_state(_load(reference), _load(tmp_path / "run/checkpoints/last.ckpt"))


def _interrupt_twice_and_finish(synthetic_root: Path, tmp_path: Path, procs: list) -> None:
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    marker = tmp_path / "stalled"

    # SIGTERM after step 2, mid-epoch 0: the preemption callback saves last.ckpt and exits.
    stall = {"at_step": 2, "marker": str(marker)}
    procs.append(_start(_config(tmp_path / "term.yaml", synthetic_root, run, stall)))
    _wait_for(marker, procs[-1])
    procs[-1].send_signal(signal.SIGTERM)
    code, out = _finish(procs[-1])
    assert code == 0 and "SIGTERM: saved" in out, out[-3000:]
    saved = _load(last)
    assert saved["global_step"] == 2
    assert saved["KittiDataModule"]["train_sampler"]["consumed"] == 4  # 2 batches of 2

    # Resume; SIGKILL after step 5, i.e. after the mid-epoch-1 save at step 4.
    marker.unlink()
    stall = {"at_step": 5, "marker": str(marker)}
    config = _config(tmp_path / "kill.yaml", synthetic_root, run, stall)
    procs.append(_start(config, "--ckpt_path", "last"))
    _wait_for(marker, procs[-1])
    saved = _load(last)
    assert (saved["global_step"], saved["epoch"]) == (4, 1)
    assert saved["KittiDataModule"]["train_sampler"]["consumed"] == 2  # 1 of 3 batches done
    procs[-1].send_signal(signal.SIGKILL)
    assert _finish(procs[-1])[0] == -signal.SIGKILL

    # Resume again, to the end of epoch 1; then wait for the uninterrupted reference.
    procs.append(_start(_config(tmp_path / "end.yaml", synthetic_root, run), "--ckpt_path", "last"))
    for proc in (procs[-1], procs[0]):
        code, out = _finish(proc)
        assert code == 0, out[-3000:]
