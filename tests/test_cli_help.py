"""What `mono` tells a user before anything runs: choice errors, help lines, accepted spellings.

Everything here stops at argument parsing (``--data.root`` need not exist).
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml

import mono
from mono.cli import TOOLS_HELP, main

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


# ---------------------------------------------------------------------------- help lines
# jsonargparse appends "(type: ..., default: ...)" to every option; what precedes it is the
# option's own entry of the class docstring's "Args:".
_GENERATED = re.compile(r"\((required, )?type: .*\)\s*$", re.DOTALL)


def _help_by_option(help_text: str, prefixes: tuple[str, ...]) -> dict[str, str]:
    """``--prefix.name`` -> its help text (generated suffix removed), from argparse's layout."""
    helps: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        option = re.match(r"^  (--[\w.]+)(?:\s\S+)*?(?:\s{2,}(\S.*))?$", line)
        if option and option.group(1).startswith(prefixes):
            current = option.group(1)
            helps[current] = [option.group(2) or ""]
        elif current and re.match(r"^\s{8,}\S", line):
            helps[current].append(line.strip())
        else:
            current = None
    return {name: _GENERATED.sub("", " ".join(lines)).strip() for name, lines in helps.items()}


def test_every_model_and_data_option_has_its_own_help_line(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mono"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    helps = _help_by_option(capsys.readouterr().out, ("--model.", "--data."))
    # Every constructor argument is an option (the linked ones are set through data.*).
    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    linked = {"height", "width", "frame_ids", "stereo_baseline"}
    expected = {f"--model.{a}" for a in inspect.signature(DepthModel).parameters} - {
        f"--model.{a}" for a in linked
    }
    expected |= {f"--data.{a}" for a in inspect.signature(KittiDataModule).parameters}
    assert set(helps) == expected
    missing = sorted(name for name, text in helps.items() if not text)
    assert missing == []


# ---------------------------------------------------------------------------- frame ids
def _printed_config(capsys, monkeypatch, *args: str) -> dict:
    monkeypatch.setattr(sys, "argv", ["mono"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--print_config", "--data.root", "x", *args])
    captured = capsys.readouterr()
    assert exit_info.value.code in (0, None), captured.err
    return yaml.safe_load(captured.out)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("[0,-1,1]", ["0", "-1", "1"]),  # what Monodepth2 users type
        ("[0, s]", ["0", "s"]),
        ("[0,-1,1,s]", ["0", "-1", "1", "s"]),
        ('["0","-1","1"]', ["0", "-1", "1"]),  # the stored form itself
    ],
)
def test_frame_ids_accept_integers_and_are_stored_as_strings(capsys, monkeypatch, typed, stored):
    config = _printed_config(capsys, monkeypatch, "--data.frame_ids", typed)
    assert config["data"]["frame_ids"] == stored


def test_frame_ids_in_a_config_file_accept_integers(capsys, monkeypatch, tmp_path):
    config_file = tmp_path / "ids.yaml"
    config_file.write_text("data:\n  frame_ids: [0, -1, 1, s]\n")
    config = _printed_config(capsys, monkeypatch, "--config", str(config_file))
    assert config["data"]["frame_ids"] == ["0", "-1", "1", "s"]


def test_a_bad_frame_id_is_a_parse_error_naming_it(capsys, monkeypatch):
    args = ["fit", "--data.frame_ids", "[0,x]", "--data.root", "x"]
    error = _parse_error(capsys, monkeypatch, *args)
    assert "data.frame_ids" in error and "'x'" in error
    assert "Traceback" not in error


# ---------------------------------------------------------------------------- light help
_TORCH_AFTER = """
import sys
from mono.cli import main
try:
    main({args!r})
except SystemExit as exit_:
    print("exit:", exit_.code)
print("torch imported:", "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        *[[tool, "--help"] for tool in TOOLS_HELP],
    ],
    ids=lambda args: " ".join(args),
)
def test_help_and_version_do_not_import_torch(args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = _TORCH_AFTER.format(args=args)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["exit: 0", "torch imported: False"]


def test_version_names_the_package_version():
    result = _mono("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mono {mono.__version__}"


def test_the_optimiser_is_set_one_way_only():
    """LightningCLI's --optimizer would silently replace model.lr and the StepLR schedule."""
    proc = subprocess.run(
        [sys.executable, "-m", "mono.cli", "fit", "--data.root", "/nonexistent"]
        + ["--optimizer", "torch.optim.SGD", "--print_config"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "error: unrecognized arguments: --optimizer torch.optim.SGD" in proc.stderr
    command = [sys.executable, "-m", "mono.cli", "fit", "--help"]
    help_text = subprocess.run(command, capture_output=True, text=True, cwd=REPO).stdout
    assert "--optimizer" not in help_text and "--lr_scheduler" not in help_text
    assert "--model.lr" in help_text


# ---------------------------------------------------------------------------- tool style
TOOLS = sorted(TOOLS_HELP)


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_shows_defaults_and_reads_a_config(capsys, tool):
    with pytest.raises(SystemExit) as exit_info:
        main([tool, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--config CONFIG" in text if tool == "check-data" else "--config FILE" in text
    if tool in ("export", "predict", "evaluate", "benchmark"):
        assert "(default: " in text


def test_a_tool_config_file_sets_options_the_command_line_overrides(tmp_path, capsys):
    config = tmp_path / "export.yaml"
    config.write_text(f"ckpt: {tmp_path / 'missing.ckpt'}\nformat: pt\nout: {tmp_path / 'o'}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(config)])
    assert str(exit_info.value) == f"mono export: checkpoint not found: {tmp_path / 'missing.ckpt'}"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(config), "--ckpt", str(tmp_path / "other.ckpt")])
    assert str(exit_info.value) == f"mono export: checkpoint not found: {tmp_path / 'other.ckpt'}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("fromat: pt\n", "unknown option 'fromat'; known: "),
        ("format: ptt\n", "format: 'ptt' is not one of pt, torchscript, onnx, monodepth2"),
        ("opset: many\n", "opset: 'many': invalid literal for int()"),
        ("- a list\n", "not a YAML mapping of options"),
    ],
)
def test_a_bad_tool_config_is_one_line_naming_file_and_key(tmp_path, capsys, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(config), "--out", "o", "--ckpt", "c"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"mono export: error: --config {config}")
    assert message in error


def test_a_missing_tool_config_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(tmp_path / "none.yaml")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"mono export: error: --config {tmp_path / 'none.yaml'}: file not found\n"
    )


def test_a_bad_tool_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt", "c", "--out", "o", "--format", "xyz"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "mono export: error: argument --format: invalid choice: 'xyz' "
        "(choose from 'pt', 'torchscript', 'onnx', 'monodepth2')\n"
    )
