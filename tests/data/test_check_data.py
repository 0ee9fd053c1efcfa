"""Bad frames are found before training (empty files), by `mono check-data` (all of them), and
during training a corrupt frame names its file and split line."""

import numpy as np
import pytest
from kitti_tree import DATE, DRIVE, frame_image
from PIL import Image

from mono.cli import main
from mono.data.errors import DataFormatError
from mono.data.kitti import KittiRawDataset
from mono.data.splits import read_split


def _image_file(root, frame, camera=2):
    return root / DRIVE / f"image_0{camera}" / "data" / f"{frame:010d}.png"


def _truncate(path, keep: int = 60) -> None:
    """Keep the header and part of the pixel data: PIL opens it, decoding fails."""
    path.write_bytes(path.read_bytes()[:keep])


def _noisy_frame(path, h=6, w=8) -> None:
    """A frame that does not compress to a few bytes, so a cut lands inside the pixel data."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _config(tmp_path, root, **data):
    lines = ["data:", f"  root: {root}", "  split: splits/tiny"]
    lines += [f"  {k}: {v}" for k, v in data.items()]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _check_data(*args) -> int | str | None:
    with pytest.raises(SystemExit) as info:
        main(["check-data", *args])
        raise SystemExit(0)
    return info.value.code


# ----------------------------------------------------------------------------- before every fit
def test_check_files_refuses_an_empty_frame(kitti_root):
    _image_file(kitti_root, 0).write_bytes(b"")
    _image_file(kitti_root, 4).write_bytes(b"")
    path = kitti_root / "splits" / "tiny" / "train_files.txt"
    dataset = KittiRawDataset(kitti_root, read_split(path), split_file=path)
    with pytest.raises(DataFormatError) as info:
        dataset.check_files()
    assert str(info.value) == (
        f"{_image_file(kitti_root, 0)} is empty (0 bytes): frame '-1' needed by {path}:1 "
        f"('{DRIVE} 1 l'); 1 further files are empty"
    )


# ----------------------------------------------------------------------------- mono check-data
def test_check_data_reports_every_bad_file_with_its_split_line(kitti_root, tmp_path, capsys):
    _image_file(kitti_root, 0).write_bytes(b"")
    _image_file(kitti_root, 4).unlink()
    _image_file(kitti_root, 2, camera=3).write_bytes(b"not an image")
    Image.fromarray(frame_image(3, "r", h=7, w=9)).save(_image_file(kitti_root, 3, camera=3))
    scan = kitti_root / DRIVE / "velodyne_points" / "data" / "0000000002.bin"
    scan.write_bytes(scan.read_bytes()[:10])
    config = _config(tmp_path, kitti_root)
    assert _check_data("--config", str(config)) == 1
    train = kitti_root / "splits" / "tiny" / "train_files.txt"
    assert capsys.readouterr().out.splitlines() == [
        "train ground truth: lidar (6 of 6 samples)",
        "val ground truth: lidar (2 of 2 samples)",
        f"{_image_file(kitti_root, 0)} is empty (0 bytes): frame '-1' needed by {train}:1 "
        f"('{DRIVE} 1 l')",
        f"{scan} holds 10 bytes, not a whole number of 16-byte points (x, y, z, reflectance as "
        f"float32): lidar ground truth needed by {train}:2 ('{DRIVE} 2 l')",
        f"{_image_file(kitti_root, 4)} is missing: frame '1' needed by {train}:3 ('{DRIVE} 3 l')",
        f"{_image_file(kitti_root, 2, 3)} is not a readable image (UnidentifiedImageError: cannot "
        f"identify image file '{_image_file(kitti_root, 2, 3)}'): frame '1' needed by {train}:4 "
        f"('{DRIVE} 1 r')",
        f"{_image_file(kitti_root, 3, 3)} is 9x7, but 3 other frames of "
        f"{kitti_root / DRIVE / 'image_03' / 'data'} are 8x6: frame '1' needed by {train}:5 "
        f"('{DRIVE} 2 r')",
        "check-data: 5 problems in 15 files needed by train (6 samples) and val (2 samples) "
        "(headers read)",
    ]


def test_check_data_on_a_sound_tree_exits_0(kitti_root, tmp_path, capsys):
    assert _check_data("--config", str(_config(tmp_path, kitti_root)), "--deep") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "check-data: all 15 files needed by train (6 samples) and val (2 samples) are fine "
        "(decoded)"
    )


def test_only_deep_decodes_every_frame(kitti_root, tmp_path, capsys):
    frame = _image_file(kitti_root, 2)
    _noisy_frame(frame)
    _truncate(frame)
    config = str(_config(tmp_path, kitti_root))
    assert _check_data("--config", config) == 0
    capsys.readouterr()
    assert _check_data("--config", config, "--deep") == 1
    train = kitti_root / "splits" / "tiny" / "train_files.txt"
    assert capsys.readouterr().out.splitlines()[2:] == [
        f"{frame} cannot be decoded (OSError: image file is truncated): frame '1' needed by "
        f"{train}:1 ('{DRIVE} 1 l')",
        "check-data: 1 problems in 15 files needed by train (6 samples) and val (2 samples) "
        "(decoded)",
    ]


def test_check_data_names_a_malformed_calibration_once(kitti_root, tmp_path, capsys):
    (kitti_root / DATE / "calib_cam_to_cam.txt").write_text("P_rect_02: 1 2 3\n")
    config = str(_config(tmp_path, kitti_root, intrinsics="calib"))
    assert _check_data("--config", config) == 1
    calib = kitti_root / DATE / "calib_cam_to_cam.txt"
    train = kitti_root / "splits" / "tiny" / "train_files.txt"
    assert capsys.readouterr().out.splitlines()[2:-1] == [
        f"{calib}: missing or malformed entry 'P_rect_02' (12 numbers); needed by {train}:1 "
        f"('{DRIVE} 1 l')",
        f"{calib}: missing or malformed entry 'P_rect_03' (12 numbers); needed by {train}:4 "
        f"('{DRIVE} 1 r')",
    ]


def test_check_data_needs_a_root(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("data:\n  split: eigen_zhou\n")
    assert _check_data("--config", str(config)) == (
        f"mono check-data: error: {config} sets no data.root; give it with --data.root"
    )


# ----------------------------------------------------------------------------- during training
def test_a_corrupt_frame_names_its_file_and_split_line(kitti_root):
    frame = _image_file(kitti_root, 2)
    _noisy_frame(frame)
    _truncate(frame)
    path = kitti_root / "splits" / "tiny" / "train_files.txt"
    dataset = KittiRawDataset(kitti_root, read_split(path), split_file=path)
    dataset.check_files()  # the header is intact: only decoding finds it
    with pytest.raises(DataFormatError) as info:
        dataset[0]
    assert str(info.value) == (
        f"{frame} cannot be decoded (OSError: image file is truncated): frame '1' of "
        f"{path}:1 ('{DRIVE} 1 l')"
    )
