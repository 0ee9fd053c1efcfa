"""Synthetic KITTI-layout drives: layout, determinism, ground truth and the scene's promises."""

import hashlib
import json
import re

import numpy as np
import pytest
from PIL import Image

from mono.cli import main
from mono.data import calib, synth
from mono.data.synth import MOVING_CAR, ROAD, SKY, make_drives, render_frame, write_dataset
from mono.data.synth_scene import CAMERA_HEIGHT, STEREO_BASELINE

# A dataset small enough to write several times per test (~0.2 s).
MINI = dict(width=64, height=32, frames=14, train_drives=1, val_drives=0, test_drives=0,
            lidar_rows=16)  # fmt: skip


@pytest.fixture(scope="module")
def meta(synthetic_root):
    return json.loads((synthetic_root / "synthetic.json").read_text())


@pytest.fixture(scope="module")
def drives():
    return make_drives(seed=0, preset="tiny")  # the same drives as the synthetic_root fixture


def _png(path):
    return np.array(Image.open(path))


def _tree_digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_is_kitti_raw(synthetic_root, meta):
    preset = synth.PRESETS["tiny"]
    date_dir = synthetic_root / "2011_01_01"
    assert meta["complete"] and meta["params"]["preset"] == "tiny"
    assert len(meta["drives"]) == preset["train_drives"] + preset["val_drives"] + 1
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        assert (date_dir / name).read_text().startswith("calib_time: ")
    for drive in meta["drives"]:
        folder = synthetic_root / drive["folder"]
        assert re.fullmatch(r"2011_01_01_drive_\d{4}_sync", folder.name)
        names = [f"{t:010d}" for t in range(drive["frames"])]
        for sub, ext in [
            ("image_02/data", "png"),
            ("image_03/data", "png"),
            ("velodyne_points/data", "bin"),
            ("proj_depth/groundtruth/image_02", "png"),
        ]:
            assert sorted(p.name for p in (folder / sub).iterdir()) == [f"{n}.{ext}" for n in names]
        poses = np.loadtxt(folder / "poses.txt")
        assert poses.shape == (drive["frames"], 12)
        np.testing.assert_allclose(poses[0], np.eye(4)[:3].ravel(), atol=1e-12)


def test_calibration_reads_back(synthetic_root):
    date_dir = synthetic_root / "2011_01_01"
    np.testing.assert_allclose(
        calib.normalised_intrinsics(date_dir, 2), calib.MONODEPTH2_K, atol=1e-6
    )
    assert calib.stereo_baseline(date_dir) == pytest.approx(STEREO_BASELINE, abs=1e-9)
    P2, size = calib.projection_matrix(date_dir, 2)
    assert size == (80, 256)
    assert P2[0, 2] == pytest.approx(0.5 * 256 + 1)  # 1-based principal point
    assert calib.read_calib_file(date_dir / "calib_cam_to_cam.txt")["S_rect_00"].tolist() == [
        256,
        80,
    ]


def test_split_files(synthetic_root, meta):
    folders = {d["split"]: [] for d in meta["drives"]}
    for d in meta["drives"]:
        folders[d["split"]].append(d["folder"])
    frames = meta["drives"][0]["frames"]
    for split in ("train", "val", "test"):
        lines = (synthetic_root / "splits" / f"{split}_files.txt").read_text().splitlines()
        parsed = [line.split(" ") for line in lines]
        assert {p[0] for p in parsed} == set(folders[split])
        assert {int(p[1]) for p in parsed} == set(range(1, frames - 1))  # neighbours exist
        assert {p[2] for p in parsed} == ({"l"} if split == "test" else {"l", "r"})
        assert len(lines) == len(folders[split]) * (frames - 2) * (1 if split == "test" else 2)
    assert not set(folders["train"]) & (set(folders["val"]) | set(folders["test"]))


def test_images_have_preset_size_and_match_render(synthetic_root, drives):
    drive = drives[0]
    left = _png(synthetic_root / drive.relpath / "image_02/data/0000000003.png")
    right = _png(synthetic_root / drive.relpath / "image_03/data/0000000003.png")
    assert left.shape == right.shape == (80, 256, 3) and left.dtype == np.uint8
    np.testing.assert_array_equal(left, render_frame(drive, 3, camera=2).image)
    np.testing.assert_array_equal(right, render_frame(drive, 3, camera=3).image)
    assert left.std() > 20  # textured, not flat


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _tree_digest(write_dataset(tmp_path / "a", seed=3, preset="tiny", **MINI))
    b = _tree_digest(write_dataset(tmp_path / "b", seed=3, preset="tiny", **MINI))
    c = _tree_digest(write_dataset(tmp_path / "c", seed=4, preset="tiny", **MINI))
    assert a == b
    assert a.keys() == c.keys()
    image = "2011_01_01/2011_01_01_drive_0001_sync/image_02/data/0000000005.png"
    assert a[image] != c[image]


def test_complete_dataset_is_reused_and_never_mixed(tmp_path):
    root = write_dataset(tmp_path, seed=0, preset="tiny", **MINI)
    image = root / "2011_01_01/2011_01_01_drive_0001_sync/image_02/data/0000000000.png"
    image.unlink()
    write_dataset(tmp_path, seed=0, preset="tiny", **MINI)  # complete: nothing rewritten
    assert not image.exists()
    with pytest.raises(FileExistsError, match="other parameters"):
        write_dataset(tmp_path, seed=1, preset="tiny", **MINI)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="fps"):
        make_drives(0, "tiny", fps=10)
    with pytest.raises(ValueError, match="huge"):
        make_drives(0, "huge")
    with pytest.raises(ValueError, match="frames=12"):
        make_drives(0, "tiny", frames=12)  # too short for a 4-frame stationary stretch


def test_lidar_projects_to_true_depth(synthetic_root, drives):
    drive = drives[0]
    date_dir = synthetic_root / drive.date
    for t in (0, 7, drive.frames - 1):
        velo = synthetic_root / drive.relpath / f"velodyne_points/data/{t:010d}.bin"
        points = calib.load_velodyne(velo)
        sparse = calib.lidar_depth(date_dir, velo)
        true = render_frame(drive, t).depth
        filled = sparse > 0
        assert (points[:, 0] < 0).sum() > 0  # points behind the scanner are in the file...
        assert filled.sum() == (points[:, 0] >= 0).sum()  # ...and only they are dropped
        assert filled.mean() > 0.05
        np.testing.assert_allclose(sparse[filled], true[filled], rtol=1e-6)


def test_dense_ground_truth_round_trips(synthetic_root, drives):
    drive = drives[1]
    frame = render_frame(drive, 5)
    gt = _png(synthetic_root / drive.relpath / "proj_depth/groundtruth/image_02/0000000005.png")
    assert gt.dtype == np.uint16
    valid = (frame.depth > 0) & (frame.depth <= 80)
    np.testing.assert_array_equal(gt > 0, valid)
    assert np.abs(gt[valid] / 256.0 - frame.depth[valid]).max() <= 1 / 512
    assert (frame.depth[frame.object_id == SKY] == 0).all()
    assert (frame.object_id == SKY).any() and (frame.depth > 80).any()  # both kinds of invalid


def test_road_depth_is_plane_depth(drives):
    # The bottom row looks at the road: depth = camera height * fy / (row - cy).
    frame = render_frame(drives[0], 2)
    h, w = 80, 256
    fy, cy = 1.92 * h, 0.5 * h
    assert frame.object_id[h - 1, w // 2] == ROAD
    assert frame.depth[h - 1, w // 2] == pytest.approx(CAMERA_HEIGHT * fy / (h - 1 - cy), rel=1e-6)


def test_poses_file_matches_motion(synthetic_root, meta, drives):
    drive, info = drives[0], meta["drives"][0]
    poses = np.loadtxt(synthetic_root / drive.relpath / "poses.txt").reshape(-1, 3, 4)
    np.testing.assert_allclose(poses[4], drive.T_world_cam(4)[:3], atol=1e-8)
    steps = np.linalg.norm(np.diff(poses[:, :, 3], axis=0), axis=1)
    first, last = info["stationary"]
    assert (steps[first:last] == 0).all()  # frames first..last share one pose
    assert 0.8 < steps[1] < 1.2  # ~1 m per frame elsewhere
    # camera 3 is the baseline to the right of camera 2
    T3 = drive.T_world_cam(4, camera=3)
    centre3_in_cam2 = np.linalg.inv(drive.T_world_cam(4)) @ T3[:, 3]
    np.testing.assert_allclose(centre3_in_cam2, [STEREO_BASELINE, 0, 0, 1], atol=1e-12)


def test_stationary_stretch_repeats_frames(synthetic_root, meta):
    for info in meta["drives"]:
        first, last = info["stationary"]
        assert last - first + 1 == synth.PRESETS["tiny"]["stationary"]
        data = synthetic_root / info["folder"] / "image_02/data"
        frames = [(data / f"{t:010d}.png").read_bytes() for t in range(first - 1, last + 2)]
        assert len(set(frames[1:-1])) == 1  # identical while standing still
        assert frames[0] != frames[1] and frames[-1] != frames[-2]


def test_moving_frames_differ(synthetic_root, meta):
    info = meta["drives"][0]
    first, last = info["stationary"]
    data = synthetic_root / info["folder"] / "image_02/data"
    images = [_png(data / f"{t:010d}.png").astype(int) for t in range(info["frames"])]
    for t in range(info["frames"] - 1):
        if not first <= t < last:
            assert np.abs(images[t + 1] - images[t]).mean() > 5, f"frame {t + 1} == frame {t}"


@pytest.mark.parametrize("camera", [2, 3])
def test_moving_car_is_static_in_the_image(drives, meta, camera):
    drive = drives[0]
    a, b = render_frame(drive, 1, camera), render_frame(drive, 2, camera)
    car = a.object_id == MOVING_CAR
    assert car.sum() > 100
    np.testing.assert_array_equal(b.object_id == MOVING_CAR, car)
    np.testing.assert_array_equal(a.image[car], b.image[car])
    np.testing.assert_array_equal(a.depth[car], b.depth[car])
    background = ~car & (a.object_id != SKY)
    changed = np.abs(a.image.astype(int) - b.image.astype(int)).max(axis=2) > 8
    assert changed[background].mean() > 0.5
    # Its rear face is at the recorded distance.
    assert a.depth[car].min() == pytest.approx(meta["drives"][0]["moving_car"]["distance_m"])


def test_stereo_disparity_of_the_moving_car(drives, meta):
    # Rear-face pixels (at the car's distance d) shift left by fx * baseline / d in camera 3.
    drive, d = drives[0], meta["drives"][0]["moving_car"]["distance_m"]
    columns = []
    for camera in (2, 3):
        frame = render_frame(drive, 1, camera)
        rear = (frame.object_id == MOVING_CAR) & np.isclose(frame.depth, d, rtol=1e-5)
        columns.append(np.nonzero(rear)[1].mean())
    fx = 0.58 * 256
    assert columns[0] - columns[1] == pytest.approx(fx * STEREO_BASELINE / d, abs=0.6)


def test_cli_writes_and_reports_each_drive(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(synth.PRESETS, "mini", {**synth.PRESETS["tiny"], **MINI, "val_drives": 1})
    main(["synth", "--out", str(tmp_path), "--preset", "mini", "--seed", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines[:2]] == [
        "2011_01_01/2011_01_01_drive_0001_sync",
        "2011_01_01/2011_01_01_drive_0002_sync",
    ]
    assert lines[-1] == f"synthetic drives in {tmp_path} (splits in {tmp_path}/splits)"
    assert json.loads((tmp_path / "synthetic.json").read_text())["params"]["seed"] == 2
