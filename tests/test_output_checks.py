"""Outputs are checked before the work, counts before predicting, and every I/O error names
its path (a read-only or blocked folder, a full disk, a corrupt ground-truth file)."""

import errno

import numpy as np
import pytest
import torch

from mono.cli import main
from mono.data.errors import DataFormatError
from mono.evaluation.commands import cmd_evaluate
from mono.evaluation.gt import load_gt
from mono.output_files import OutputError

H, W = 32, 96


@pytest.fixture(scope="module")
def exported_gt(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gt") / "gt.npz"
    main(["export-gt", "--data", str(synthetic_root), "--split", "splits", "--out", str(out)])
    return out


@pytest.fixture
def blocked(tmp_path):
    """A file where an output folder would have to be."""
    path = tmp_path / "file.txt"
    path.write_text("")
    return path


class CountingPredictor:
    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return torch.full((images.shape[0], 1, *images.shape[2:]), 0.5)


def _evaluate(root, gt, predictor, **kwargs):
    return cmd_evaluate(
        root, "splits", predict_fn=predictor, height=H, width=W, gt_path=gt, log=None, **kwargs
    )


def test_unwritable_save_disps_fails_before_predicting(synthetic_root, exported_gt, blocked):
    predictor = CountingPredictor()
    with pytest.raises(OutputError) as info:
        _evaluate(synthetic_root, exported_gt, predictor, save_disps=blocked / "d.npy")
    assert str(info.value) == (
        f"--save-disps {blocked / 'd.npy'}: its folder {blocked} is not writable (File exists)"
    )
    assert predictor.calls == 0


def test_a_full_disk_names_the_file(synthetic_root, exported_gt, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(OutputError) as info:
        _evaluate(synthetic_root, exported_gt, CountingPredictor(), save_disps=tmp_path / "d.npy")
    assert str(info.value) == (
        f"could not write --save-disps {tmp_path / 'd.npy'} (No space left on device)"
    )


def test_a_wrong_ground_truth_count_fails_before_predicting(synthetic_root, tmp_path):
    gt = tmp_path / "gt.npz"
    maps = np.empty(3, dtype=object)
    maps[:] = [np.ones((4, 5), np.float32)] * 3
    np.savez(gt, data=maps)
    predictor = CountingPredictor()
    with pytest.raises(ValueError) as info:
        _evaluate(synthetic_root, gt, predictor)
    assert str(info.value) == (
        f"22 test images in the splits split but 3 ground-truth maps in {gt}: both must follow "
        "the splits split's test_files.txt (re-export with `mono export-gt --data "
        f"{synthetic_root} --split splits --out {gt}`)"
    )
    assert predictor.calls == 0


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_corrupt_ground_truth_file_is_named(exported_gt, tmp_path, keep):
    bad = tmp_path / "gt.npz"
    data = exported_gt.read_bytes()
    bad.write_bytes(data[: int(len(data) * keep)] if keep else b"garbage, not a zip archive")
    with pytest.raises(DataFormatError) as info:
        load_gt(bad, "/data", "splits")
    message = str(info.value)
    assert message.startswith(f"{bad}: not a readable ground-truth file (")
    assert message.endswith(
        f"); re-export it with `mono export-gt --data /data --split splits --out {bad}`"
    )


def test_export_gt_checks_its_output_before_projecting(synthetic_root, blocked):
    out = blocked / "gt.npz"
    with pytest.raises(SystemExit) as info:
        main(["export-gt", "--data", str(synthetic_root), "--split", "splits", "--out", str(out)])
    assert info.value.code == (
        f"mono export-gt: error: ground-truth file {out}: its folder {blocked} is not writable "
        "(File exists)"
    )


@pytest.mark.parametrize("tool", ["export", "predict"])
def test_export_and_predict_name_an_unwritable_out_folder(tmp_path, blocked, tool):
    from mono.nets import DepthNet
    from mono.nets.monodepth2_format import save_monodepth2

    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 192)
    (tmp_path / "in.png").write_bytes((tmp_path / "w" / "depth.pth").read_bytes()[:0])
    out = blocked / "sub"
    args = ["--weights", str(tmp_path / "w"), "--out", str(out)]
    args += ["--format", "pt"] if tool == "export" else [str(tmp_path / "in.png")]
    with pytest.raises(SystemExit) as info:
        main([tool, *args])
    assert info.value.code == f"mono {tool}: --out {out} is not writable (Not a directory)"
