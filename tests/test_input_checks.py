"""Inputs that used to give a plausible-looking wrong answer are refused with a named cause."""

import numpy as np
import pytest

from mono.cli import main


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_scoring_without_weights_is_refused(tmp_path, subcommand):
    with pytest.raises(SystemExit) as info:
        main([subcommand, "--data.root", str(tmp_path), "--trainer.logger=false"])
    assert info.value.code == (
        f"mono {subcommand}: error: no --ckpt_path given, so the scores would be those of "
        "randomly initialised weights; pass --ckpt_path (e.g. runs/synthetic/checkpoints/"
        "last.ckpt) or --model.init_weights (a Monodepth2 weights folder)"
    )


def test_init_weights_are_what_test_scores(synthetic_root, tmp_path, capsys):
    # `mono test --model.init_weights DIR` scores the folder's weights, as --ckpt_path does.
    from pathlib import Path

    import pytorch_lightning as pl
    import torch

    from mono.module import DepthModel
    from mono.nets.monodepth2_format import save_monodepth2

    configs = Path(__file__).resolve().parents[1] / "configs"
    torch.manual_seed(123)
    model = DepthModel(
        64, 192, pretrained=False, frame_ids=["0", "-1", "1", "s"], stereo_baseline="calib",
        min_depth=1.0, eval_crop="none",
    )  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    settings = {"min_depth": 1.0, "max_depth": 100.0, "metric_scale": 1.0}
    save_monodepth2(tmp_path / "w", model.depth, 64, 192, model.pose, True, settings)
    common = [
        "test", "--config", str(configs / "synthetic.yaml"),
        "--config", str(configs / "synthetic_mono_stereo.yaml"), f"--data.root={synthetic_root}",
        "--data.synthesize=null", "--data.num_workers=0", "--data.batch_size=4",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        "--trainer.callbacks=[]", "--trainer.limit_test_batches=1",
    ]  # fmt: skip
    scores = []
    for source in (f"--ckpt_path={tmp_path / 'm.ckpt'}", f"--model.init_weights={tmp_path / 'w'}"):
        capsys.readouterr()
        main([*common, source])
        line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("model "))
        scores.append(line.split()[1:])
    assert scores[0] == scores[1]


# ----------------------------------------------------------------------------- calibration
def _calib_with_p_rect_02(tmp_path, fx: str, fy: str = "5.0"):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        "S_rect_02: 8.0 6.0\n"
        f"P_rect_02: {fx} 0.0 4.5 0.24 0.0 {fy} 3.2 0.0 0.0 0.0 1.0 0.0\n"
    )
    return path


@pytest.mark.parametrize("fx", ["nan", "inf", "-inf"])
def test_calibration_with_a_non_finite_value_is_refused(tmp_path, fx):
    from mono.data.calib import CalibrationError, normalised_intrinsics

    path = _calib_with_p_rect_02(tmp_path, fx)
    with pytest.raises(CalibrationError) as info:
        normalised_intrinsics(tmp_path, 2)
    assert str(info.value) == (f"{path}: entry 'P_rect_02' holds {fx}; expected 12 finite numbers")


@pytest.mark.parametrize("fx, fy", [("0.0", "5.0"), ("-4.0", "5.0"), ("4.0", "0")])
def test_calibration_with_a_non_positive_focal_length_is_refused(tmp_path, fx, fy):
    from mono.data.calib import CalibrationError, projection_matrix

    path = _calib_with_p_rect_02(tmp_path, fx, fy)
    with pytest.raises(CalibrationError) as info:
        projection_matrix(tmp_path, 2)
    assert str(info.value) == (
        f"{path}: entry 'P_rect_02' has focal lengths fx={float(fx):g}, fy={float(fy):g}; "
        "both must be positive"
    )


# ----------------------------------------------------------------------------- split files
def test_a_byte_order_mark_is_not_part_of_the_first_folder(tmp_path):
    from mono.data.splits import SplitEntry, read_split
    from mono.evaluation.gt import test_split_lines

    (tmp_path / "train_files.txt").write_bytes("\ufeffd/x 1 l\nd/x 2 r\n".encode())
    assert read_split(tmp_path / "train_files.txt")[0] == SplitEntry("d/x", 1, "l", 1)
    (tmp_path / "test_files.txt").write_bytes("\ufeffd/x 1 l\n".encode())
    assert test_split_lines(str(tmp_path)) == ["d/x 1 l"]


@pytest.mark.parametrize("stage", ["train", "val"])
def test_a_line_without_side_is_refused_outside_test_splits(tmp_path, stage):
    from mono.data.splits import SplitEntry, read_split

    path = tmp_path / f"{stage}_files.txt"
    path.write_text("d/x 1 l\nd/x 2\n")
    with pytest.raises(ValueError) as info:
        read_split(path)
    assert str(info.value) == (
        f"{path}:2: expected 'folder frame side' (side l|r), the side is missing (only a test "
        "split may leave it out): 'd/x 2'"
    )
    (tmp_path / "test_files.txt").write_text("d/x 1 l\nd/x 2\n")
    assert read_split(tmp_path / "test_files.txt")[1] == SplitEntry("d/x", 2, "l", 2)


# ----------------------------------------------------------------------------- --ext-disp
@pytest.fixture(scope="module")
def exported_gt(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gt") / "gt.npz"
    main(["export-gt", "--data", str(synthetic_root), "--split", "splits", "--out", str(out)])
    return out


def _evaluate_error(synthetic_root, gt_file, disps, path) -> str:
    np.save(path, disps)
    args = ["evaluate", "--ext-disp", path, "--data", synthetic_root, "--split", "splits"]
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in [*args, "--gt", gt_file]])
    return info.value.code


N_TEST = 22  # the tiny preset's test split


def test_ext_disp_of_another_size_is_refused(synthetic_root, exported_gt, tmp_path):
    path = tmp_path / "d.npy"
    message = _evaluate_error(synthetic_root, exported_gt, np.ones((21, 8, 24), np.float32), path)
    assert message.startswith(
        f"mono evaluate: error: 21 predictions from {path} but {N_TEST} ground-truth maps in "
        f"{exported_gt}: both must follow the splits split's test_files.txt"
    )
    message = _evaluate_error(synthetic_root, exported_gt, np.ones((N_TEST, 8), np.float32), path)
    assert message == (
        f"mono evaluate: error: {path}: expected (N, h, w) disparities, got shape ({N_TEST}, 8)"
    )


@pytest.mark.parametrize(
    "value, problem",
    [
        (np.nan, "2 non-finite values (NaN or inf), the first in map 3"),
        (np.inf, "2 non-finite values (NaN or inf), the first in map 3"),
        (-0.5, "2 negative values, the first in map 3; disparities are >= 0"),
    ],
)
def test_ext_disp_values_are_checked(synthetic_root, exported_gt, tmp_path, value, problem):
    disps = np.ones((N_TEST, 8, 24), np.float32)
    disps[3, 0, :2] = value
    path = tmp_path / "d.npy"
    message = _evaluate_error(synthetic_root, exported_gt, disps, path)
    assert message == f"mono evaluate: error: {path}: {problem}"


def test_ext_disp_for_the_benchmark_split_is_counted_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where benchmark_predictions/ would go
    path = tmp_path / "d.npy"
    np.save(path, np.ones((3, 8, 24), np.float32))
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--ext-disp", str(path), "--split", "benchmark"])
    assert info.value.code == (
        f"mono evaluate: error: {path}: 3 disparity maps, but the benchmark split lists 500 "
        "test images; give one map per line of its test_files.txt, in order"
    )
    assert not (tmp_path / "benchmark_predictions").exists()
