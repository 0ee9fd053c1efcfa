"""Every ```python block of README.md runs as written, from a fresh folder.

The folder holds what the README's main job leaves behind (``make train``): the tiny synthetic
drives in ``data/synthetic`` and a checkpoint of the main job's model in
``runs/synthetic/checkpoints/last.ckpt`` (untrained: the snippets show tools, not results).
A block right after a ``<!-- no-test: REASON -->`` line is skipped with that reason.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- no-test: (?P<reason>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)


def python_blocks() -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason)`` of each ```python block, in README order."""
    text = README.read_text()
    return [
        (text[: m.start("code")].count("\n"), m["code"], m["reason"]) for m in BLOCK.finditer(text)
    ]


@pytest.fixture(scope="module")
def main_job_folder(synthetic_root, tmp_path_factory):
    """A working directory laid out as after ``make train``."""
    import pytorch_lightning as pl

    from mono.module import DepthModel

    folder = tmp_path_factory.mktemp("readme")
    (folder / "data").mkdir()
    (folder / "data" / "synthetic").symlink_to(synthetic_root)
    model = DepthModel(
        64, 192, frame_ids=["0", "-1", "1", "s"], stereo_baseline="calib", pretrained=False,
        min_depth=1.0,
    )  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(folder / "runs" / "synthetic" / "checkpoints" / "last.ckpt")
    return folder


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 1


@pytest.mark.parametrize("line, code, reason", python_blocks(), ids=lambda v: str(v)[:12])
def test_python_block_runs(line, code, reason, main_job_folder):
    if reason is not None:
        pytest.skip(f"README.md line {line}: {reason}")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), MONO_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=main_job_folder, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"README.md line {line}:\n{code}\n{done.stderr[-3000:]}"
