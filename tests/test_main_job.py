"""A shorter version of the README's main job: `mono fit` then `mono test` on synthetic drives."""

import re
from pathlib import Path

import pytest

from mono.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)


def _table_value(text: str, label: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return float(line[len(label) :].split()[0])


def _fit_and_test(synthetic_root, run: Path, seed: int, capsys) -> tuple[float, float, str]:
    common = [
        "--config",
        str(REPO / "configs" / "synthetic.yaml"),
        f"--data.root={synthetic_root}",
        "--data.synthesize=null",
        "--data.num_workers=0",
        f"--trainer.default_root_dir={run}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=true",
        f"--seed_everything={seed}",
    ]
    main(
        [
            "fit",
            *common,
            "--trainer.max_steps=200",
            "--trainer.max_epochs=100",
            "--trainer.limit_val_batches=0",
            "--model.scheduler_step_size=100",
            # 200 steps on the tiny drives are too few for the main job's 100-step
            # learning-rate warm-up (measured: abs_rel 0.425, 0.417, 0.340 against 0.414)
            "--model.lr_warmup_steps=0",
        ]
    )
    ckpts = sorted((run / "checkpoints").glob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    capsys.readouterr()
    main(["test", *common, f"--ckpt_path={ckpts[-1]}"])
    out = capsys.readouterr().out
    assert re.search(r"abs_rel -?[0-9.]+% lower than the baseline", out)
    return _table_value(out, "model"), _table_value(out, "constant depth (median-scaled)"), out


def test_fit_then_test_beats_constant_depth_in_most_seeds(synthetic_root, tmp_path, capsys):
    # Monocular training from scratch leaves its degenerate phase at a seed-dependent step
    # (docs/convergence.md), and float32 rounding alone changes which seeds do: one draw is no
    # regression test. Measured here after 200 steps on the tiny drives (seeds 0, 1, 2): abs_rel
    # 0.326, 0.400 and 0.414 (a constant) against the constant's 0.414. Most seeds must beat
    # the constant, and the best by 15 %.
    results = [_fit_and_test(synthetic_root, tmp_path / f"seed{s}", s, capsys) for s in SEEDS]
    scores = [model for model, _, _ in results]
    baseline = results[0][1]
    assert all(b == baseline for _, b, _ in results)  # the same held-out drive every time
    print(f"abs_rel per seed {scores}, constant depth {baseline:.4f}")
    median = sorted(scores)[len(scores) // 2]
    assert median < baseline, f"abs_rel per seed {scores} vs constant-depth {baseline:.3f}"
    assert min(scores) < 0.85 * baseline, f"abs_rel per seed {scores} vs {baseline:.3f}"
