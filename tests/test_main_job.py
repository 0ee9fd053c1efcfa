"""A shorter version of the README's main job: `mono fit` then `mono test` on synthetic drives."""

import re
from pathlib import Path

import pytest

from mono.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _table_value(text: str, label: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return float(line[len(label) :].split()[0])


def test_fit_then_test_beats_constant_depth(synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
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
    ]
    main(
        [
            "fit",
            *common,
            "--trainer.max_steps=120",
            "--trainer.max_epochs=100",
            "--trainer.limit_val_batches=0",
            "--model.scheduler_step_size=100",
        ]
    )
    ckpts = sorted((run / "checkpoints").glob("*.ckpt")) or sorted(run.rglob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    capsys.readouterr()
    main(["test", *common, f"--ckpt_path={ckpts[-1]}"])
    out = capsys.readouterr().out
    model = _table_value(out, "model")
    baseline = _table_value(out, "constant depth (median-scaled)")
    print(out)
    assert re.search(r"abs_rel .*% lower than the baseline", out)
    assert model < 0.85 * baseline, f"abs_rel {model:.3f} vs constant-depth {baseline:.3f}"
