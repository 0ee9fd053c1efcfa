"""What `mono` tells a user before anything runs: choice errors, help lines, accepted spellings.

Everything here stops at argument parsing (``--data.root`` need not exist).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from mono.cli import main

REPO = Path(__file__).resolve().parents[1]


def _mono(*args: str) -> subprocess.CompletedProcess:
    """``python -m mono.cli ARGS`` in a fresh process, with this checkout's ``mono``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MONO_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mono.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def _parse_error(capsys, monkeypatch, *args: str) -> str:
    """The stderr of ``mono ARGS`` run in this process, which must exit with status 2."""
    monkeypatch.setattr(sys, "argv", ["mono"])  # LightningCLI warns when pytest's argv is set
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------------------- choice options


def test_misspelt_choice_is_a_short_parse_error_naming_option_and_choices():
    result = _mono("fit", "--model.pose_model_type", "sepparate", "--data.root", "/nonexistent")
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(error) <= 6, result.stderr
    text = "\n".join(error)
    assert "model.pose_model_type" in text
    assert "sepparate" in text
    for choice in ("separate", "shared", "posecnn"):
        assert choice in text


@pytest.mark.parametrize(
    ("option", "choices"),
    [
        ("model.depth_net", ["resnet", "eigen"]),
        ("data.img_ext", ["auto", "png", "jpg"]),
        ("data.intrinsics", ["monodepth2", "calib"]),
        ("data.depth", ["none", "lidar", "dense", "auto"]),
        ("data.stereo_baseline", ["calib"]),
    ],
)
def test_every_choice_option_is_checked_by_the_parser(capsys, monkeypatch, option, choices):
    error = _parse_error(
        capsys, monkeypatch, "fit", f"--{option}", "typo", "--data.root", "/nonexistent"
    )
    assert "Traceback" not in error
    assert len(error.strip().splitlines()) <= 12, error  # a union lists each member's error
    assert option in error and "typo" in error
    for choice in choices:
        assert repr(choice) in error


def test_depth_net_choices_are_the_registry():
    from mono.nets import DEPTH_NETS, DepthNetName

    assert set(get_args(DepthNetName)) == set(DEPTH_NETS)
