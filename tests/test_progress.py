"""Progress of the long steps: rendering the drives, predicting for evaluation (stderr)."""

import shutil

import pytest
import torch

from mono.cli import main
from mono.data.synth import write_dataset
from mono.nets import DepthNet, PoseNet
from mono.nets.monodepth2_format import save_monodepth2

SMALL = dict(preset="tiny", frames=16, train_drives=1, val_drives=0, test_drives=0)


def test_synth_shows_frames_rendered(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MONO_PROGRESS", "1")
    write_dataset(tmp_path / "a", verbose=True, **SMALL)
    out, err = capsys.readouterr()
    assert f"synth: rendering {tmp_path / 'a'}: 100%" in err and "| 16/16 [" in err
    assert "synth: wrote 2011_01_01/2011_01_01_drive_0001_sync (train, 16 frames) in " in out


@pytest.mark.parametrize("setting", [None, "0"])
def test_no_bar_off_a_terminal_unless_asked(tmp_path, capsys, monkeypatch, setting):
    # capsys's stderr is not a terminal
    if setting is None:
        monkeypatch.delenv("MONO_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("MONO_PROGRESS", setting)
    write_dataset(tmp_path / "b", **SMALL)
    assert capsys.readouterr().err == ""


def test_evaluate_shows_images_predicted_and_scored(synthetic_root, tmp_path, capsys, monkeypatch):
    split = tmp_path / "split"
    split.mkdir()
    shutil.copy(synthetic_root / "splits" / "test_files.txt", split)
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 192, PoseNet("separate"))
    main(["export-gt", "--data", str(synthetic_root), "--split", str(split)])
    monkeypatch.setenv("MONO_PROGRESS", "1")
    capsys.readouterr()
    main(["evaluate", "--weights", str(tmp_path / "w"), "--data", str(synthetic_root)]
         + ["--split", str(split)])  # fmt: skip
    err = capsys.readouterr().err
    assert "evaluate: predicting: 100%" in err and "| 22/22 [" in err
    assert "evaluate: scoring: 100%" in err
    assert err.count("evaluate: scoring: 100%") == 1  # not again for the baseline
    drive = "2011_01_01/2011_01_01_drive_0004_sync"  # the tiny preset's test drive, 24 frames
    main(["evaluate-pose", "--weights", str(tmp_path / "w"), "--data", str(synthetic_root)]
         + ["--drive", drive])  # fmt: skip
    err = capsys.readouterr().err
    assert "evaluate-pose: predicting: 100%" in err and "| 23/23 [" in err
