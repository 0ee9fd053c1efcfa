"""Runs that survive: atomic checkpoints, clear errors for broken ones, exact resume.

The end-to-end test trains in ``python -m mono.cli fit`` subprocesses (see ``runs.py``), stops
one with SIGTERM and another with SIGKILL, resumes each with ``--ckpt_path last`` and requires
the final weights to equal an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import pytest
import runs
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from mono.callbacks import AtomicCheckpointIO, with_atomic_checkpoint_io
from mono.checkpoint import CheckpointError
from mono.rng_state import rng_states, set_rng_states


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


@pytest.mark.slow
def test_sigterm_and_sigkill_then_resume_match_an_uninterrupted_run(synthetic_root, tmp_path):
    procs = [runs.start(runs.write_config(tmp_path / "ref.yaml", synthetic_root, tmp_path / "ref"))]
    try:
        _interrupt_twice_and_finish(synthetic_root, tmp_path, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reference = tmp_path / "ref" / "checkpoints" / "last.ckpt"
    runs.assert_same_training_state(
        runs.load(reference), runs.load(tmp_path / "run/checkpoints/last.ckpt")
    )


def _interrupt_twice_and_finish(synthetic_root: Path, tmp_path: Path, procs: list) -> None:
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    marker = tmp_path / "stalled"

    # SIGTERM after step 2, mid-epoch 0: the preemption callback saves last.ckpt and exits.
    stall = {"class_path": "runs.Stall", "init_args": {"at_step": 2, "marker": str(marker)}}
    config = runs.write_config(tmp_path / "term.yaml", synthetic_root, run, callbacks=[stall])
    procs.append(runs.start(config))
    runs.wait_for(marker, procs[-1])
    procs[-1].send_signal(signal.SIGTERM)
    code, out = runs.finish(procs[-1])
    assert code == 0 and "SIGTERM: saved" in out, out[-3000:]
    saved = runs.load(last)
    assert saved["global_step"] == 2
    assert saved["KittiDataModule"]["train_sampler"]["consumed"] == 4  # 2 batches of 2

    # Resume; SIGKILL after step 5, i.e. after the mid-epoch-1 save at step 4.
    marker.unlink()
    stall = {"class_path": "runs.Stall", "init_args": {"at_step": 5, "marker": str(marker)}}
    config = runs.write_config(tmp_path / "kill.yaml", synthetic_root, run, callbacks=[stall])
    procs.append(runs.start(config, "--ckpt_path", "last"))
    runs.wait_for(marker, procs[-1])
    saved = runs.load(last)
    assert (saved["global_step"], saved["epoch"]) == (4, 1)
    assert saved["KittiDataModule"]["train_sampler"]["consumed"] == 2  # 1 of 3 batches done
    procs[-1].send_signal(signal.SIGKILL)
    assert runs.finish(procs[-1])[0] == -signal.SIGKILL

    # Resume again, to the end of epoch 1; then wait for the uninterrupted reference.
    config = runs.write_config(tmp_path / "end.yaml", synthetic_root, run)
    procs.append(runs.start(config, "--ckpt_path", "last"))
    for proc in (procs[-1], procs[0]):
        code, out = runs.finish(proc)
        assert code == 0, out[-3000:]
