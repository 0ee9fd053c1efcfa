"""The notebooks: stored without outputs, and run top to bottom on the CPU (headless)."""

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def test_notebooks_are_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {p.name for p in paths} >= {"inspect_masks.ipynb", "quickstart.ipynb"}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            assert not cell.outputs, f"{path.name}: cell {i} has outputs; clear them"
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"


@pytest.fixture
def kernel_name(tmp_path, monkeypatch) -> str:
    """A kernel spec that runs this interpreter, so the notebooks see the test environment."""
    spec = tmp_path / "jupyter" / "kernels" / "mono-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "mono tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "mono-test"


def _run(name: str, kernel_name: str):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    return nb


def _outputs(nb) -> tuple[str, int]:
    """All printed text of a run, and how many pictures it showed."""
    text, pictures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            pictures += "image/png" in out.get("data", {})
    return "".join(text), pictures


@pytest.fixture
def notebook_env(synthetic_root, monkeypatch, tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MONO_SYNTH_ROOT", str(synthetic_root))
    monkeypatch.setenv("MONO_NOTEBOOK_STEPS", "30")
    monkeypatch.delenv("MONO_CKPT", raising=False)
    return tmp_path


@pytest.mark.slow
def test_quickstart_runs_and_its_checkpoint_inspects(notebook_env, kernel_name, monkeypatch):
    ckpt = notebook_env / "quickstart.ckpt"
    monkeypatch.setenv("MONO_QUICKSTART_CKPT", str(ckpt))
    text, pictures = _outputs(_run("quickstart.ipynb", kernel_name))
    assert "trained 30 steps" in text
    assert ckpt.is_file()
    assert pictures >= 3  # a training sample, the synthetic prediction, the street

    # The inspection notebook on that checkpoint: loaded, not trained.
    monkeypatch.setenv("MONO_CKPT", str(ckpt))
    text, pictures = _outputs(_run("inspect_masks.ipynb", kernel_name))
    assert "trained" not in text and "model: 64x192" in text
    assert pictures >= 9


@pytest.mark.slow
def test_inspect_masks_runs(notebook_env, kernel_name):
    text, pictures = _outputs(_run("inspect_masks.ipynb", kernel_name))
    assert "trained 30 steps" in text  # no checkpoint given: trained inside
    assert "of the stationary pair" in text and "loss on the car" in text
    assert pictures >= 9  # driving frame, 4 scales, all disparities, stationary, car x2
