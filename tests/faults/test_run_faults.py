"""Fault injection: every way a run used to lose work, reproduced on the tiny drives.

Each test trains ``mono fit`` subprocesses (see ``runs.py``) and asserts what survives: step
counts, bit-identical weights against an uninterrupted run, file hashes, exit codes and the
exact messages a user sees.
"""

from __future__ import annotations

import json
import random
import signal
import time

import pytest
import runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(synthetic_root, tmp_path_factory):
    """An uninterrupted 2-epoch run with one DataLoader worker: its final last.ckpt."""
    folder = tmp_path_factory.mktemp("reference")
    config = runs.write_config(folder / "ref.yaml", synthetic_root, folder / "run", workers=1)
    code, out = runs.run(config)
    assert code == 0, out[-3000:]
    return runs.load(folder / "run" / "checkpoints" / "last.ckpt")


def test_resume_from_an_epoch_end_trains_the_next_epoch_in_full(
    synthetic_root, tmp_path, reference
):
    run_dir = tmp_path / "run"
    one_epoch = {"max_epochs": 1}
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, workers=1, trainer=one_epoch
    )
    code, out = runs.run(config)
    assert code == 0, out[-3000:]
    assert runs.load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 3
    config = runs.write_config(tmp_path / "b.yaml", synthetic_root, run_dir, workers=1)
    code, out = runs.run(config, "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    runs.assert_same_training_state(reference, runs.load(run_dir / "checkpoints" / "last.ckpt"))


def test_a_second_fit_in_the_same_folder_refuses_and_changes_nothing(synthetic_root, tmp_path):
    run_dir = tmp_path / "run"
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, trainer={"max_steps": 1}
    )
    code, out = runs.run(config)
    assert code == 0, out[-3000:]
    before = runs.hashes(run_dir)
    assert "checkpoints/last.ckpt" in before
    code, out = runs.run(config)
    assert code != 0
    assert (
        f"error: {run_dir} already holds a run (checkpoints/last.ckpt): continue it with "
        "--ckpt_path last, or start a new run with --trainer.default_root_dir <new folder>"
    ) in out
    assert runs.hashes(run_dir) == before


def test_every_output_path_follows_default_root_dir(synthetic_root, tmp_path):
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, tmp_path / "configured", trainer={"max_steps": 1}
    )
    moved = tmp_path / "moved"
    code, out = runs.run(config, "--trainer.default_root_dir", str(moved))
    assert code == 0, out[-3000:]
    assert not (tmp_path / "configured").exists()
    assert (moved / "checkpoints" / "last.ckpt").is_file()
    assert f"checkpoints: {moved / 'checkpoints'}; logs: none" in out
    assert f"last: {moved / 'checkpoints' / 'last.ckpt'} (continue with --ckpt_path last)" in out
    assert "fit done at step 1\n" in out


def test_fast_dev_run_leaves_the_checkpoints_alone(synthetic_root, tmp_path):
    run_dir = tmp_path / "run"
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, trainer={"max_steps": 1}
    )
    assert runs.run(config)[0] == 0
    before = runs.hashes(run_dir)
    code, out = runs.run(config, "--trainer.fast_dev_run", "1")
    assert code == 0, out[-3000:]
    assert runs.hashes(run_dir) == before


@pytest.mark.parametrize("mode", ["supervised", "self_supervised"])
def test_a_diverging_run_stops_with_a_diagnosis_and_keeps_the_good_checkpoint(
    synthetic_root, tmp_path, mode
):
    run_dir = tmp_path / "run"
    config = runs.write_config(
        tmp_path / "a.yaml",
        synthetic_root,
        run_dir,
        every_n_train_steps=1,
        model={"lr": 1e6, "training_mode": mode},
        data={"frame_ids": ["0"]} if mode == "supervised" else {},
    )
    code, out = runs.run(config)
    assert code not in (0, -signal.SIGSEGV, 139), out[-3000:]
    assert "error: non-finite training at step " in out, out[-3000:]
    last = runs.load(run_dir / "checkpoints" / "last.ckpt")
    assert runs.all_finite(last)
    diagnostic = list((run_dir / "checkpoints").glob("nonfinite-step=*.ckpt"))
    assert len(diagnostic) == 1
    step = int(diagnostic[0].stem.split("=")[1])
    assert f"error: non-finite training at step {step}" in out
    assert last["global_step"] == step - 1  # saved after the last good step; nothing later


def test_skipping_a_bounded_number_of_bad_batches(synthetic_root, tmp_path):
    config = runs.write_config(
        tmp_path / "a.yaml",
        synthetic_root,
        tmp_path / "run",
        model={"lr": 1e6, "training_mode": "supervised", "max_skipped_nonfinite": 2},
        data={"frame_ids": ["0"]},
    )
    code, out = runs.run(config)
    assert code != 0
    assert out.count("skipping non-finite step") == 2, out[-3000:]
    assert "error: non-finite training at step " in out and "(3rd non-finite step" in out


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_process_group_saves_and_exits_cleanly(
    synthetic_root, tmp_path, reference, name
):
    run_dir = tmp_path / "run"
    marker = tmp_path / "stalled"
    stall = {"class_path": "runs.Stall", "init_args": {"at_step": 4, "marker": str(marker)}}
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, workers=1, callbacks=[stall]
    )
    proc = runs.start(config, new_session=True)
    runs.wait_for(marker, proc)
    runs.signal_group(proc, runs.SIGNALS[name])
    code, out = runs.finish(proc)
    expected_code = 0 if name == "SIGTERM" else 130
    assert code == expected_code, out[-3000:]
    assert f"{name}: saved {run_dir / 'checkpoints' / 'last.ckpt'} at step 4" in out
    assert runs.load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 4
    config = runs.write_config(tmp_path / "b.yaml", synthetic_root, run_dir, workers=1)
    code, out = runs.run(config, "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    runs.assert_same_training_state(reference, runs.load(run_dir / "checkpoints" / "last.ckpt"))


@pytest.mark.parametrize("moment", ["last_step", "validation"])
def test_the_interrupted_epoch_is_validated_after_resume(synthetic_root, tmp_path, moment):
    """Stopped at epoch 0's last step (saved before its validation) or during validation."""
    run_dir = tmp_path / "run"
    record = tmp_path / "val.jsonl"
    marker = tmp_path / "stalled"
    during = "train" if moment == "last_step" else "val"
    callbacks = [
        {"class_path": "runs.RecordValidation", "init_args": {"path": str(record)}},
        {
            "class_path": "runs.Stall",
            "init_args": {"at_step": 3, "marker": str(marker), "during": during},
        },
    ]
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, callbacks=callbacks, every_n_train_steps=3
    )
    proc = runs.start(config)
    runs.wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL if moment == "last_step" else signal.SIGTERM)
    code, out = runs.finish(proc)
    if moment == "last_step":
        assert not record.exists()  # killed before epoch 0's validation
    else:  # SIGTERM waits for the validation under way, then saves and exits
        assert code == 0 and "SIGTERM: finishing this validation, then saving" in out, out[-3000:]
    callbacks = [{"class_path": "runs.RecordValidation", "init_args": {"path": str(record)}}]
    config = runs.write_config(tmp_path / "b.yaml", synthetic_root, run_dir, callbacks=callbacks)
    code, out = runs.run(config, "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(0, 3), (1, 6)]
    assert all(r["abs_rel"] is not None for r in rows)
    best = sorted(p.name for p in (run_dir / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1, best


def test_stale_partial_files_are_removed_at_start_up(synthetic_root, tmp_path):
    run_dir = tmp_path / "run"
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, trainer={"max_steps": 1}
    )
    assert runs.run(config)[0] == 0
    stale = run_dir / "checkpoints" / ".best-step=1.ckpt.0123456789ab.partial"
    stale.write_bytes(b"PK\x03\x04 half a zip")
    code, out = runs.run(config, "--ckpt_path", "last", "--trainer.max_steps", "2")
    assert code == 0, out[-3000:]
    assert not stale.exists()
    assert f"removed 1 unfinished checkpoint file(s) in {run_dir / 'checkpoints'}" in out


def test_five_kills_at_random_moments_end_bit_identical(synthetic_root, tmp_path, reference):
    """SIGKILL five times at random moments (mid-step, mid-save, mid-validation); resume each
    time; the final state equals the uninterrupted run's."""
    rng = random.Random(1234)
    run_dir = tmp_path / "run"
    config = runs.write_config(
        tmp_path / "a.yaml", synthetic_root, run_dir, workers=1, every_n_train_steps=1
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    kills = 0
    for _ in range(20):
        args = ("--ckpt_path", "last") if last.exists() else ()
        proc = runs.start(config, *args)
        if kills == 5:
            code, out = runs.finish(proc)
            assert code == 0, out[-3000:]
            break
        # Wait until training runs (the first save of this process), then kill at random.
        deadline = time.monotonic() + 120
        start_mtime = last.stat().st_mtime_ns if last.exists() else 0
        while proc.poll() is None and time.monotonic() < deadline:
            if last.exists() and last.stat().st_mtime_ns != start_mtime:
                break
            time.sleep(0.01)
        # Within about two steps of the save: a longer wait lets a fast machine finish the
        # 6-step run before the fifth kill.
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        runs.finish(proc)
    assert kills == 5
    runs.assert_same_training_state(reference, runs.load(last))


@pytest.mark.parametrize(
    "switch", [("--trainer.logger", "false"), ("--trainer.enable_checkpointing", "false")]
)
def test_standard_lightning_switches_work_over_the_shipped_config(synthetic_root, tmp_path, switch):
    """The shipped config lists a learning-rate monitor (needs a logger) and checkpoint
    callbacks (need checkpointing); switching either off must train, not crash."""
    run_dir = tmp_path / "run"
    args = [
        *("--data.root", str(synthetic_root), "--data.synthesize", "null"),
        *("--data.limit_train_samples", "8", "--trainer.max_steps", "1"),
        *("--trainer.limit_val_batches", "0", "--trainer.default_root_dir", str(run_dir)),
        *switch,
    ]
    config = runs.REPO / "configs" / "synthetic.yaml"
    proc = runs.start(config, *args, log_path=tmp_path / "fit.log")
    code, out = runs.finish(proc)
    assert code == 0, out[-3000:]
    saved = sorted(p.name for p in run_dir.rglob("*.ckpt"))
    assert saved == ([] if "enable_checkpointing" in switch[0] else ["last.ckpt"])
