"""mono.evaluation: ground-truth export, Monodepth2's depth protocol, post-processing, pose ATE."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mono.data.calib import STEREO_SCALE_FACTOR
from mono.evaluation import commands, depth, gt, pose

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


def _write_calib(date_dir):
    """8 x 6 images, f = 4, principal point (4, 3) in the devkit's 1-based pixels.

    Velodyne (x forward, y left, z up) -> camera (x right, y down, z forward), the LiDAR
    0.5 m behind the camera: cam = (-y, -z, x - 0.5). Camera 3's principal point is one
    pixel further right.
    """
    date_dir.mkdir(parents=True)

    def fmt(values):
        return " ".join(f"{v:.6e}" for v in values)

    P2 = [4, 0, 4, 0, 0, 4, 3, 0, 0, 0, 1, 0]
    P3 = [4, 0, 5, 0, 0, 4, 3, 0, 0, 0, 1, 0]
    (date_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        f"R_rect_00: {fmt(np.eye(3).ravel())}\n"
        f"S_rect_02: {fmt([8, 6])}\nP_rect_02: {fmt(P2)}\n"
        f"S_rect_03: {fmt([8, 6])}\nP_rect_03: {fmt(P3)}\n"
    )
    R = [0, -1, 0, 0, 0, -1, 1, 0, 0]
    (date_dir / "calib_velo_to_cam.txt").write_text(f"R: {fmt(R)}\nT: {fmt([0, 0, -0.5])}\n")


def _kitti_root(tmp_path):
    root = tmp_path / "kitti"
    _write_calib(root / "2011_09_26")
    velo_dir = root / DRIVE / "velodyne_points" / "data"
    velo_dir.mkdir(parents=True)
    points = np.array(
        [
            [2.5, 0.0, 0.0, 1],  # cam (0, 0, 2) -> pixel row 2, col 3; stored depth is x = 2.5
            [4.5, 0.0, 0.0, 1],  # same pixel, farther: dropped by the nearest rule
            [10.5, -2.5, 0.0, 1],  # cam (2.5, 0, 10) -> row 2, col 4
            [5.5, -1.25, 0.0, 1],  # same pixel, nearer and later: kept
            [-3.0, 0.0, 0.0, 1],  # behind the scanner: would hit row 2, col 3 with -3
            [2.5, -10.0, 0.0, 1],  # off the image (col 23)
            [3.5, 0.0, -0.75, 1],  # cam (0, 0.75, 3) -> row 3, col 3
        ],
        dtype=np.float32,
    )
    points.tofile(velo_dir / "0000000000.bin")
    return root


def test_export_gt_eigen_hand_made_layout(tmp_path):
    root = _kitti_root(tmp_path)
    lines = [f"{DRIVE} 0000000000 l", f"{DRIVE} 0000000000 r"]
    out = gt.export_gt(root, "eigen", lines=lines, log=None)
    assert out == root / "gt_depths_eigen.npz"
    left, right = gt.load_gt(out)
    expected = np.zeros((6, 8), np.float32)
    expected[2, 3], expected[2, 4], expected[3, 3] = 2.5, 5.5, 3.5
    np.testing.assert_array_equal(left, expected)
    assert left.dtype == np.float32
    np.testing.assert_array_equal(right, np.roll(expected, 1, axis=1))  # camera 3, cx + 1


def test_export_gt_eigen_benchmark_png(tmp_path):
    png_dir = tmp_path / DRIVE / "proj_depth" / "groundtruth" / "image_02"
    png_dir.mkdir(parents=True)
    raw = np.array([[0, 256, 512], [1000, 0, 65535]], dtype=np.uint16)
    Image.fromarray(raw).save(png_dir / "0000000005.png")
    out = gt.export_gt(
        tmp_path, "eigen_benchmark", tmp_path / "x.npz", lines=[f"{DRIVE} 5 l"], log=None
    )
    (loaded,) = gt.load_gt(out)
    np.testing.assert_allclose(loaded, raw / 256.0)


def test_export_gt_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'kitti'.*eigen, eigen_benchmark"):
        gt.export_gt(tmp_path, "kitti")
    with pytest.raises(FileNotFoundError, match=r"0000000007\.bin.*line 1.*drive_0001_sync 7 l"):
        gt.export_gt(tmp_path, "eigen", lines=[f"{DRIVE} 7 l"], log=None)
    with pytest.raises(
        ValueError, match=r"^eigen:1: expected 'folder frame side'.*side is missing"
    ):
        gt.export_gt(tmp_path, "eigen", lines=[f"{DRIVE} 7"], log=None)


def test_load_gt_missing_says_how_to_export(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"mono export-gt --data /d --split eigen_benchmark"
    ):
        gt.load_gt(tmp_path / "nope.npz", "/d", "eigen_benchmark")


def test_test_image_paths(tmp_path):
    first = gt.test_split_lines("eigen")[0].split()
    paths = gt.test_image_paths(tmp_path, "eigen", img_ext="png")
    assert len(paths) == 697
    assert paths[0] == tmp_path / first[0] / "image_02" / "data" / f"{first[1]}.png"
    jpg = tmp_path / DRIVE / "image_03" / "data" / "0000000012.jpg"
    jpg.parent.mkdir(parents=True)
    jpg.touch()
    (auto,) = gt.test_image_paths(tmp_path, "eigen", "auto", lines=[f"{DRIVE} 12 r"])
    assert auto == jpg
    bench = gt.test_image_paths(tmp_path, "benchmark")
    assert len(bench) == 500
    expected = tmp_path / "depth_selection/test_depth_prediction_anonymous/image/0000000499.png"
    assert bench[-1] == expected


def _sparse_gt(seed, shape=(12, 40)):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 70.0, shape).astype(np.float32)
    depth[rng.random(shape) < 0.5] = 0.0
    return depth


def test_evaluate_ground_truth_as_disparity_is_perfect():
    gts = [_sparse_gt(0), _sparse_gt(1, (10, 30))]
    disps = [np.where(g > 0, 1.0 / np.maximum(g, 1e-6), 1.0) for g in gts]
    for scaling, factor in (("median", 0.5), ("none", 1.0), ("stereo", STEREO_SCALE_FACTOR)):
        # depth = 1 / disp: a disparity of factor / gt is exact after the protocol's scaling
        result = depth.evaluate_disparities(
            [factor * d for d in disps], gts, "eigen", scaling, log=None
        )
        assert result.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-5), scaling
        assert result.metrics["a1"] == 1.0
        assert result.per_image["abs_rel"].shape == (2,)
    assert result.ratios.size == 0 and math.isnan(result.ratio_median)


def test_evaluate_reports_scaling_ratios(capsys):
    gts = [_sparse_gt(2), _sparse_gt(3)]
    disps = [2.0 / np.maximum(g, 1.0) for g in gts]
    result = depth.evaluate_disparities(disps, gts, "eigen", "median")
    np.testing.assert_allclose(result.ratios, [2.0, 2.0], rtol=1e-6)
    assert result.ratio_median == pytest.approx(2.0) and result.ratio_std == pytest.approx(0.0)
    assert "Scaling ratios | med: 2.000 | std: 0.000" in capsys.readouterr().out


def test_eigen_benchmark_keeps_far_ground_truth():
    g = np.full((4, 4), 10.0, np.float32)
    g[:, 2:] = 100.0  # beyond 80 m: kept (gt > 0), while the prediction is clamped to 80
    result = depth.evaluate_disparities([1.0 / g], [g], "eigen_benchmark", "none", log=None)
    assert result.metrics["abs_rel"] == pytest.approx((0.0 + 0.2) / 2)


def test_evaluate_errors():
    with pytest.raises(ValueError, match="2 predictions but 3 ground-truth maps"):
        depth.evaluate_disparities(np.ones((2, 4, 4)), [np.ones((4, 4))] * 3, log=None)
    with pytest.raises(ValueError, match="unknown split 'benchmark'"):
        depth.evaluate_disparities(np.ones((1, 4, 4)), [np.ones((4, 4))], "benchmark", log=None)
    with pytest.raises(ValueError, match="image 0.*no valid ground-truth pixel"):
        depth.evaluate_disparities(
            np.ones((1, 4, 4)), [np.zeros((4, 4))], "eigen_benchmark", log=None
        )


def test_resize_matches_cv2_bilinear():
    # cv2.resize([[0, 1]], (4, 1)) = [[0, 0.25, 0.75, 1]] (half-pixel centres, edge clamp)
    out = depth.resize_disparity(np.array([[0.0, 1.0]]), 1, 4)
    np.testing.assert_allclose(out, [[0.0, 0.25, 0.75, 1.0]])


def test_per_image_csv_and_table(tmp_path):
    gts = [_sparse_gt(4), _sparse_gt(5)]
    disps = [1.0 / np.maximum(g, 1.0) for g in gts]
    csv_path = tmp_path / "per_image.csv"
    result = depth.evaluate_disparities(
        disps, gts, "eigen", "median", per_image_csv=csv_path, names=["a", "b"], log=None
    )
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "index,name,abs_rel,sq_rel,rmse,rmse_log,a1,a2,a3,silog,ratio"
    assert rows[2].startswith("1,b,0.000000")
    table = depth.format_table({**result.metrics, "abs_rel": 0.1154})
    header, values = table.splitlines()
    assert header.split("|")[0].strip() == "abs_rel" and "silog" in header
    assert values.startswith("&   0.115  ") and values.endswith("\\\\")


def test_post_process_symmetric_input_is_unchanged():
    d = torch.rand(2, 3, 5)
    d = d + d.flip(-1)  # mirror-symmetric, so the mirrored prediction equals it
    out = depth.post_process_disparity(d, d.flip(-1))
    torch.testing.assert_close(out, d)


def test_post_process_ramps_hand_computed():
    left = np.zeros((1, 2, 40), np.float32)
    flipped = np.ones((1, 2, 40), np.float32)  # mirrored back: ones
    out = depth.post_process_disparity(left, flipped)
    assert isinstance(out, np.ndarray)
    # column 0 is pure flipped pass, the last column pure left pass, the middle the mean
    assert out[0, 0, 0] == pytest.approx(1.0) and out[0, 0, -1] == pytest.approx(0.0)
    assert out[0, 1, 20] == pytest.approx(0.5)
    # column 1: x = 1/39 < 0.05, still l_mask = 1; column 2: x = 2/39, l_mask = 1 - 20 (x - 0.05)
    assert out[0, 0, 1] == pytest.approx(1.0)
    l2 = 1 - 20 * (2 / 39 - 0.05)
    assert out[0, 0, 2] == pytest.approx(l2 + (1 - l2) * 0.5)


def _write_images(folder, values, size=(8, 6)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, v in enumerate(values):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[...] = v
        img[:, : size[0] // 2, 1] = 255  # left half differs in green: not mirror-symmetric
        path = folder / f"{i:06d}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


def test_predict_disparities_batches_and_post_processes(tmp_path):
    paths = _write_images(tmp_path / "img", [10, 20, 30])
    calls = []

    def predict_fn(x):
        calls.append(x.shape[0])
        return x[:, :1]  # red channel: equivariant to mirroring

    out = depth.predict_disparities(predict_fn, paths, 3, 4, batch_size=2)
    assert out.shape == (3, 3, 4) and calls == [2, 1]
    np.testing.assert_allclose(out[:, 0, 0], [10 / 255, 20 / 255, 30 / 255], atol=1e-6)
    calls.clear()
    pp = depth.predict_disparities(
        predict_fn, paths, 3, 4, batch_size=2, post_process=True, to_scaled_disp=lambda d: 2 * d
    )
    assert calls == [4, 2]
    np.testing.assert_allclose(pp, 2 * out, atol=1e-6)


def test_benchmark_pngs_round_trip(tmp_path):
    depths = np.array([[[1.0, 80.0], [300.0, 0.5]]])
    out = depth.write_benchmark_pngs(depths, tmp_path / "bench")
    png = np.asarray(Image.open(out / "0000000000.png"))
    np.testing.assert_array_equal(png, [[256, 20480], [65535, 128]])
    made = depth.benchmark_depths(np.full((1, 2, 4), STEREO_SCALE_FACTOR / 10.0), size=(3, 5))
    np.testing.assert_allclose(made, np.full((1, 3, 5), 10.0), rtol=1e-6)


def test_cmd_evaluate_ext_disp(tmp_path, capsys):
    gts = [_sparse_gt(6), _sparse_gt(7)]
    gt_path = tmp_path / "gt.npz"
    packed = np.empty(2, dtype=object)
    packed[:] = gts
    np.savez_compressed(gt_path, data=packed)
    np.save(tmp_path / "d.npy", np.stack([1.0 / np.maximum(g, 1.0) for g in gts]))
    result = commands.cmd_evaluate(ext_disp=tmp_path / "d.npy", gt_path=gt_path)
    assert result.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert result.baseline["abs_rel"] > 0.1
    assert "abs_rel |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exactly one"):
        commands.cmd_evaluate(gt_path=gt_path)
    with pytest.raises(ValueError, match="unknown split 'odom'"):
        commands.cmd_evaluate(ext_disp=tmp_path / "d.npy", split="odom")
    # The benchmark split has no ground truth: the count is checked against its 500 lines.
    with pytest.raises(ValueError, match=r"d\.npy: 2 disparity maps, but the benchmark split"):
        commands.cmd_evaluate(ext_disp=tmp_path / "d.npy", split="benchmark", log=None)
    np.save(tmp_path / "b.npy", np.full((500, 2, 4), 0.5, np.float32))
    out = commands.cmd_evaluate(
        ext_disp=tmp_path / "b.npy", split="benchmark", benchmark_out=tmp_path / "b", log=None
    )
    assert len(list(out.iterdir())) == 500
    png = np.asarray(Image.open(out / "0000000499.png"))
    assert png.shape == (352, 1216) and (png == int(5.4 / 0.5 * 256)).all()


# ----------------------------------------------------------------------------- pose


def test_compute_ate_hand_computed():
    line = np.array([[0.0, 0, 0], [2, 0, 0], [4, 0, 0]])
    assert pose.compute_ate(line, 0.25 * line + 7.0) == pytest.approx(0.0, abs=1e-12)
    pred = np.array([[1.0, 1, 1], [2, 2, 1], [3, 1, 1]])
    # offset -> (0,0,0), (1,1,0), (2,0,0); scale = (2 + 8) / 6; residual^2 = 1/9 + 25/9 + 4/9
    assert pose.compute_ate(line, pred) == pytest.approx(math.sqrt(30 / 9) / 3)


def _rot_y(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _trajectory(n=9):
    poses = []
    for t in range(n):
        G = np.eye(4)
        G[:3, :3] = _rot_y(0.1 * t * t)
        G[:3, 3] = [0.3 * t * t, 0.05 * t, 1.1 * t]
        poses.append(G)
    return np.stack(poses)


def test_snippet_ate_scaled_prediction_is_perfect_and_direction_matters():
    G = _trajectory()
    local = np.linalg.inv(G[1:]) @ G[:-1]  # T_{t+1, t}
    scaled = local.copy()
    scaled[:, :3, 3] *= 0.3
    result = pose.snippet_ate(scaled, G)
    assert result.ates.shape == (8,)
    assert result.ate_mean == pytest.approx(0.0, abs=1e-9)
    assert pose.snippet_ate(np.linalg.inv(local), G).ate_mean > 1e-2
    with pytest.raises(ValueError, match="3 predicted relative poses for 9"):
        pose.snippet_ate(local[:3], G)


def test_read_odometry_poses(tmp_path):
    path = tmp_path / "09.txt"
    path.write_text("1 0 0 1 0 1 0 2 0 0 1 3\n1 0 0 0 0 1 0 0 0 0 1 0\n")
    poses = pose.read_odometry_poses(path)
    assert poses.shape == (2, 4, 4)
    np.testing.assert_array_equal(poses[0, :, 3], [1, 2, 3, 1])
    np.testing.assert_array_equal(poses[1, 3], [0, 0, 0, 1])
    path.write_text("1 0 0 1 0 1 0 2 0 0 1 3\n1 0 0\n")
    with pytest.raises(ValueError, match=r"09\.txt:2: expected 12 finite numbers"):
        pose.read_odometry_poses(path)


def test_evaluate_pose_sequence_reads_pairs_in_order(tmp_path):
    G = _trajectory(4)
    _write_images(tmp_path / "sequences" / "09" / "image_2", [0, 10, 20, 30])
    (tmp_path / "poses").mkdir()
    np.savetxt(tmp_path / "poses" / "09.txt", G[:, :3].reshape(4, 12))
    local = np.linalg.inv(G[1:]) @ G[:-1]
    seen = []

    def predict_pose_fn(a, b):
        ta = torch.round(a[:, 0, 0, -1] * 255 / 10).long()  # frame index from the red value
        tb = torch.round(b[:, 0, 0, -1] * 255 / 10).long()
        seen.extend(zip(ta.tolist(), tb.tolist(), strict=True))
        return torch.from_numpy(local[ta.numpy()])

    result = pose.evaluate_pose_sequence(predict_pose_fn, tmp_path, 9, 3, 4, batch_size=2, log=None)
    assert seen == [(0, 1), (1, 2), (2, 3)]
    np.testing.assert_allclose(result.pred_poses, local)
    assert result.ate_mean == pytest.approx(0.0, abs=1e-9)
