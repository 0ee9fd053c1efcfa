"""`mono export-gt | evaluate | evaluate-pose` via mono's command line, on the synthetic drives."""

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mono.cli import main
from mono.data.synth import make_drives, render_frame
from mono.evaluation import cli as eval_cli
from mono.evaluation import commands, gt, pose
from mono.geometry import pose_vec_to_mat
from mono.nets import PoseNet

N_TEST = 22  # the tiny preset's test drive: frames 1 .. 22


def _test_drive():
    (drive,) = [d for d in make_drives(seed=0, preset="tiny") if d.split == "test"]
    return drive


def _split_copy(root, tmp_path):
    """A private copy of the synthetic test split: exported files stay inside this test."""
    split = tmp_path / "split"
    split.mkdir()
    shutil.copy(root / "splits" / "test_files.txt", split)
    return split


def _run(capsys, *args) -> str:
    main([str(a) for a in args])
    return capsys.readouterr().out


def _error(*args) -> str:
    """The one-line message a user error ends the command with."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert isinstance(info.value.code, str)  # a message, exit status 1 (not a traceback)
    return info.value.code


def _tables(out: str) -> list[dict[str, float]]:
    """Every results table printed: header ``abs_rel | ...`` then ``&  v  &  v ... \\\\``."""
    lines = out.splitlines()
    tables = []
    for header, values in zip(lines, lines[1:], strict=False):
        if header.strip().startswith("abs_rel |"):
            names = [n.strip() for n in header.split("|") if n.strip()]
            numbers = [float(v) for v in values.replace("\\\\", "").split("&") if v.strip()]
            tables.append(dict(zip(names, numbers, strict=True)))
    return tables


def _gt_as_disparity(depths) -> np.ndarray:
    """1 / depth where there is ground truth (anything elsewhere: it is not scored)."""
    return np.stack([np.where(d > 0, 1.0 / np.maximum(d, 1e-6), 1.0) for d in depths])


# ----------------------------------------------------------------------------- export-gt
def test_export_gt_reproduces_rendered_depth_at_lidar_pixels(synthetic_root, tmp_path, capsys):
    split = _split_copy(synthetic_root, tmp_path)
    out = _run(capsys, "export-gt", "--data", synthetic_root, "--split", split)
    assert f"saved {N_TEST} ground-truth maps (camera) to {split / 'gt_depths_camera.npz'}" in out
    depths = gt.load_gt(split / "gt_depths_camera.npz")
    lines = (split / "test_files.txt").read_text().splitlines()
    drive = _test_drive()
    assert len(depths) == len(lines) == N_TEST
    for i in (0, 13):
        frame = int(lines[i].split()[1])
        true = render_frame(drive, frame, 2).depth
        hit = depths[i] > 0
        assert depths[i].shape == true.shape == (80, 256)
        assert hit.sum() > 300  # ~48 scan rows x ~40 columns, minus the sky
        np.testing.assert_allclose(depths[i][hit], true[hit], rtol=1e-5)

    # Monodepth2's Eigen convention stores the scanner's x: the LiDAR sits 0.272 m behind.
    velo_file = tmp_path / "velo.npz"
    _run(
        capsys,
        "export-gt",
        "--data",
        synthetic_root,
        "--split",
        split,
        "--depth",
        "velodyne",
        "--out",
        velo_file,
    )
    velo = gt.load_gt(velo_file)[0]
    both = (velo > 0) & (depths[0] > 0)
    assert both.sum() > 0.95 * (depths[0] > 0).sum()
    assert np.median(velo[both] - depths[0][both]) == pytest.approx(0.272, abs=0.01)


def test_export_gt_dense_reads_the_benchmark_pngs(synthetic_root, tmp_path, capsys):
    split = _split_copy(synthetic_root, tmp_path)
    _run(capsys, "export-gt", "--data", synthetic_root, "--split", split, "--gt-source", "dense")
    dense = gt.load_gt(split / "gt_depths_dense.npz")
    true = render_frame(_test_drive(), 1, 2).depth
    valid = (true > 0) & (true <= 80.0)
    assert (dense[0] > 0).sum() == valid.sum()
    np.testing.assert_allclose(dense[0][valid], true[valid], atol=0.5 / 256)  # uint16 / 256


# ----------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize(
    "source, scaling, ratios", [("lidar", "auto", True), ("dense", "none", False)]
)
def test_evaluate_ground_truth_as_ext_disp_is_perfect(
    synthetic_root, tmp_path, capsys, source, scaling, ratios
):
    # --split splits is found under --data; --out / --gt keep the shared dataset untouched.
    gt_file = tmp_path / f"gt_{source}.npz"
    split = ["--data", synthetic_root, "--split", "splits", "--gt-source", source]
    _run(capsys, "export-gt", *split, "--out", gt_file)
    np.save(tmp_path / "d.npy", _gt_as_disparity(gt.load_gt(gt_file)))
    csv = tmp_path / "per_image.csv"
    out = _run(
        capsys,
        "evaluate",
        "--ext-disp",
        tmp_path / "d.npy",
        *split,
        "--gt",
        gt_file,
        "--scaling",
        scaling,
        "--per-image",
        csv,
    )
    model, baseline = _tables(out)
    assert list(model) == ["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "silog"]
    assert model["abs_rel"] == model["rmse"] == model["silog"] == 0.0
    assert model["a1"] == model["a3"] == 1.0
    assert baseline["abs_rel"] > 0.2  # the median-scaled constant depth is far off
    assert ("Scaling ratios | med: 1.000 | std: 0.000" in out) == ratios
    if ratios:
        assert "Scaling: median (auto: external disparities" in out
    rows = csv.read_text().splitlines()
    assert len(rows) == 1 + N_TEST
    assert rows[1].startswith("0,2011_01_01/2011_01_01_drive_0004_sync 1 l,0.000000")


def test_evaluate_errors_are_one_clear_line(synthetic_root, tmp_path, capsys):
    split = _split_copy(synthetic_root, tmp_path)
    disp = tmp_path / "d.npy"
    np.save(disp, np.ones((3, 8, 8), np.float32))
    ext = ["evaluate", "--ext-disp", disp, "--data", synthetic_root]

    message = _error(*ext, "--split", "eigen_full")
    assert "unknown split 'eigen_full': choose one of eigen, eigen_benchmark, benchmark" in message
    message = _error("export-gt", "--data", synthetic_root, "--split", "benchmark")
    assert "unknown split 'benchmark': choose one of eigen, eigen_benchmark," in message
    message = _error(*ext, "--split", tmp_path)
    assert f"split directory {tmp_path} has no test_files.txt" in message

    # Missing ground truth: the message is the command that exports it.
    message = _error(*ext, "--split", split)
    assert message.startswith("mono evaluate: error: ground truth not found at ")
    assert f"run `mono export-gt --data {synthetic_root} --split {split}` first" in message
    message = _error(*ext, "--split", split, "--gt-source", "dense")
    assert f"`mono export-gt --data {synthetic_root} --split {split} --gt-source dense`" in message
    message = _error(*ext, "--split", "eigen")
    assert f"`mono export-gt --data {synthetic_root} --split eigen` first" in message
    message = _error(*ext, "--split", split, "--gt", tmp_path / "x.npz")
    assert f"--split {split} --out {tmp_path / 'x.npz'}`" in message

    # 3 disparities for a split of 22 frames.
    _run(capsys, "export-gt", "--data", synthetic_root, "--split", split)
    message = _error(*ext, "--split", split)
    assert f"3 predictions from {disp} but {N_TEST} ground-truth maps in " in message
    np.save(disp, np.ones((N_TEST, 8), np.float32))
    assert "expected (N, h, w) disparities, got shape (22, 8)" in _error(*ext, "--split", split)

    # Option combinations that cannot work.
    assert "--depth applies to LiDAR" in _error(
        *ext, "--split", split, "--gt-source", "dense", "--depth", "camera"
    )
    assert "eigen_benchmark split's ground truth is the dense" in _error(
        *ext, "--split", "eigen_benchmark", "--depth", "camera"
    )
    assert "--post-process needs a model" in _error(*ext, "--split", split, "--post-process")
    assert "--batch-size 0" in _error(*ext, "--split", split, "--batch-size", "0")


def test_corrupt_or_missing_weights_fail_clearly(synthetic_root, tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    split = ["--data", synthetic_root, "--split", "splits"]
    message = _error("evaluate", "--ckpt", garbage, *split)
    assert "mono evaluate: error:" in message and f"{garbage} is corrupt or truncated" in message
    message = _error(
        "evaluate-pose", "--ckpt", tmp_path / "nope.ckpt", "--data", tmp_path, "--sequence", "9"
    )
    assert "checkpoint not found" in message
    message = _error("evaluate", "--weights", tmp_path, *split)
    assert "a Monodepth2 folder needs encoder.pth and depth.pth" in message
    assert "use --weights" in _error("evaluate", "--ckpt", tmp_path, *split)


# ----------------------------------------------------------------------------- unit pieces
def test_choose_scaling_and_gt_kind():
    assert eval_cli.choose_scaling("auto", 5.4)[:2] == ("stereo", 5.4)
    assert eval_cli.choose_scaling("auto", 1.0)[:2] == ("stereo", 1.0)  # a metric baseline
    assert eval_cli.choose_scaling("auto", None)[0] == "median"  # a monocular model
    assert eval_cli.choose_scaling("auto", None, external=True)[0] == "median"  # --ext-disp
    assert eval_cli.choose_scaling("stereo", None, external=True)[:2] == ("stereo", 5.4)
    assert eval_cli.choose_scaling("none", 1.0)[0] == "none"
    with pytest.raises(ValueError, match=r"^--scaling stereo: the model has no metric scale"):
        eval_cli.choose_scaling("stereo", None)
    assert eval_cli.gt_kind("eigen", None, None) is None  # the split's own (velodyne)
    assert eval_cli.gt_kind("eigen", "lidar", None) == "velodyne"
    assert eval_cli.gt_kind("splits", "lidar", None) == "camera"
    assert eval_cli.gt_kind("splits", None, "velodyne") == "velodyne"
    assert eval_cli.gt_kind("splits", "dense", None) == "dense"
    with pytest.raises(ValueError, match="eigen split's ground truth is LiDAR"):
        eval_cli.gt_kind("eigen", "dense", None)
    with pytest.raises(ValueError, match="eigen_benchmark split's ground truth is dense"):
        eval_cli.gt_kind("eigen_benchmark", "lidar", None)


def test_pose_predictor_feeds_the_pair_in_order_and_does_not_invert():
    seen = []

    class FakePose(PoseNet):  # the real pairing (PoseNet.transforms), a network that records
        def __init__(self):
            super().__init__("posecnn")

        def forward(self, a, b, feats_a=None, feats_b=None, encode=None):
            seen.append((a[0, 0, 0, 0].item(), b[0, 0, 0, 0].item()))
            return torch.tensor([[0.0, 0.3, 0.0]]), torch.tensor([[0.1, 0.0, -1.0]])

    nets = SimpleNamespace(pose=FakePose(), depth=None, source="x", frame_ids=["0", "-1", "1"])
    frames_t, frames_t1 = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    T = commands.pose_predictor(nets)(frames_t, frames_t1)
    assert seen == [(0.0, 1.0)]
    expected = pose_vec_to_mat(torch.tensor([[0.0, 0.3, 0.0]]), torch.tensor([[0.1, 0.0, -1.0]]))
    torch.testing.assert_close(T, expected)
    assert T[0, 2, 3] == -1.0  # not inverted: T_{t+1, t} straight from the network
    nets.pose = None
    with pytest.raises(ValueError, match=r"x has no pose network \(trained with frame_ids"):
        commands.pose_predictor(nets)


def test_raw_drive_frames_reads_the_synthetic_poses(synthetic_root):
    drive = _test_drive()
    paths, poses = pose.raw_drive_frames(synthetic_root, drive.relpath)
    assert len(paths) == len(poses) == drive.frames
    assert paths[3] == synthetic_root / drive.relpath / "image_02" / "data" / "0000000003.png"
    assert all(p.is_file() for p in paths)
    np.testing.assert_allclose(poses[5], drive.T_world_cam(5), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="poses.txt not found: --drive needs"):
        pose.raw_drive_frames(synthetic_root, "2011_01_01")


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def trained_ckpt(synthetic_root, tmp_path_factory):
    """A real Lightning checkpoint of a monocular model after two training steps."""
    import pytorch_lightning as pl

    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    pl.seed_everything(0)
    data = KittiDataModule(
        root=str(synthetic_root),
        split="splits",
        height=64,
        width=192,
        intrinsics="calib",
        batch_size=2,
        num_workers=0,
    )
    model = DepthModel(height=64, width=192, pretrained=False)
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, data)
    path = tmp_path_factory.mktemp("ckpt") / "x.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return path


@pytest.mark.slow
def test_evaluate_and_evaluate_pose_on_a_synthetic_checkpoint(
    synthetic_root, trained_ckpt, tmp_path, capsys
):
    split = _split_copy(synthetic_root, tmp_path)
    _run(capsys, "export-gt", "--data", synthetic_root, "--split", split)
    disps = tmp_path / "disps.npy"
    out = _run(
        capsys,
        "evaluate",
        "--ckpt",
        trained_ckpt,
        "--data",
        synthetic_root,
        "--split",
        split,
        "--save-disps",
        disps,
        "--batch-size",
        "8",
    )
    assert "-> Model trained at 192x64, frame_ids ['0', '-1', '1']" in out
    assert "Scaling: median (auto: a monocular model has no metric scale)" in out
    assert " Scaling ratios | med: " in out
    model, baseline = _tables(out)
    assert all(np.isfinite(v) for v in model.values()) and model["abs_rel"] > 0
    assert 0.0 <= model["a1"] <= model["a2"] <= model["a3"] <= 1.0
    assert np.load(disps).shape == (N_TEST, 64, 192)
    # The saved disparities, scored as another method's, give the same table.
    again = _run(
        capsys, "evaluate", "--ext-disp", disps, "--data", synthetic_root, "--split", split
    )
    assert _tables(again) == [model, baseline]

    drive = _test_drive()
    poses_file = tmp_path / "poses.npy"
    out = _run(
        capsys,
        "evaluate-pose",
        "--ckpt",
        trained_ckpt,
        "--data",
        synthetic_root,
        "--drive",
        drive.relpath,
        "--save-poses",
        poses_file,
    )
    predicted = np.load(poses_file)
    assert predicted.shape == (drive.frames - 1, 4, 4)
    np.testing.assert_allclose(predicted[:, 3], np.tile([0.0, 0, 0, 1], (drive.frames - 1, 1)))
    gt_poses = pose.read_odometry_poses(synthetic_root / drive.relpath / "poses.txt")
    result = pose.snippet_ate(predicted, gt_poses)
    assert f"Trajectory error: {result.ate_mean:0.3f} m, std: {result.ate_std:0.3f} m" in out


@pytest.mark.slow
def test_stereo_model_scales_by_5_4_and_has_no_pose_network(synthetic_root, tmp_path, capsys):
    from mono.module import DepthModel

    model = DepthModel(height=64, width=192, frame_ids=["0", "s"], pretrained=False)
    ckpt = tmp_path / "stereo.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    message = _error(
        "evaluate-pose", "--ckpt", ckpt, "--data", synthetic_root, "--drive", _test_drive().relpath
    )
    assert f"{ckpt} has no pose network (trained with frame_ids ['0', 's'])" in message

    split = _split_copy(synthetic_root, tmp_path)
    _run(capsys, "export-gt", "--data", synthetic_root, "--split", split)
    out = _run(
        capsys,
        "evaluate",
        "--ckpt",
        ckpt,
        "--data",
        synthetic_root,
        "--split",
        split,
        "--post-process",
    )
    assert "Scaling: stereo (auto: the model's depth is metric, x5.4)" in out
    assert "Stereo evaluation - no median scaling, depth scaled by 5.4" in out
    assert "Scaling ratios" not in out and len(_tables(out)) == 2

    ckpt.write_bytes(ckpt.read_bytes()[:100_000])  # truncated, e.g. by a full disk
    message = _error("evaluate", "--ckpt", ckpt, "--data", synthetic_root, "--split", split)
    assert "is corrupt or truncated" in message
