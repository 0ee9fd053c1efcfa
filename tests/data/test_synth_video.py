"""The synthetic drives written in the video layout: sequences, K files, split files."""

from __future__ import annotations

import numpy as np
import pytest

from mono.data.datamodule import KittiDataModule
from mono.data.intrinsics_file import read_intrinsics_file
from mono.data.synth_video import pixel_K, write_video_tree


def test_both_cameras_give_the_training_samples_of_the_kitti_split(synthetic_root, tmp_path):
    root = write_video_tree(synthetic_root, tmp_path / "frames", "folder", ("train", "val"), (2, 3))
    # Tiny preset: drives 1 and 2 train, 3 validates, 4 (test) is not written.
    assert sorted(p.name for p in root.iterdir()) == [
        "drive_0001", "drive_0001_right", "drive_0002", "drive_0002_right",
        "drive_0003", "drive_0003_right", "intrinsics.txt", "splits",
    ]  # fmt: skip
    splits = root / "splits"
    assert (splits / "train_files.txt").read_text().split() == [
        "drive_0001", "drive_0001_right", "drive_0002", "drive_0002_right"
    ]  # fmt: skip
    assert (splits / "val_files.txt").read_text().split() == ["drive_0003", "drive_0003_right"]
    right = read_intrinsics_file(root / "drive_0001_right" / "intrinsics.txt")
    np.testing.assert_allclose(right.values, pixel_K(synthetic_root, 3).ravel(), rtol=1e-9)
    left = read_intrinsics_file(root / "intrinsics.txt")
    np.testing.assert_allclose(left.values, pixel_K(synthetic_root, 2).ravel(), rtol=1e-9)

    options = dict(height=64, width=192, batch_size=2, num_workers=0, depth="none")
    video = KittiDataModule(
        str(root), dataset="video", split=str(splits), static_threshold=None, **options
    ).build_dataset("train")
    video.check_files()
    kitti = KittiDataModule(
        str(synthetic_root), split=str(synthetic_root / "splits"), **options
    ).build_dataset("train")
    kitti.check_files()
    # 2 drives x 2 cameras x frames 1..22 (both neighbours exist) = 88, and the same targets.
    assert len(video) == len(kitti) == 88
    video_targets = sorted(
        (t.name, int(t.files[p].stem))
        for t, p in ((video.timelines[i], p) for i, p in video.samples)
    )
    suffix = {"l": "", "r": "_right"}
    kitti_targets = sorted(
        (f"drive_{e.folder[-9:-5]}{suffix[e.side]}", e.frame) for e in kitti.entries
    )
    assert video_targets == kitti_targets


def test_mp4_of_the_right_camera_has_its_own_k_file(synthetic_root, tmp_path):
    root = write_video_tree(synthetic_root, tmp_path / "mp4", "mp4", ("val",), (3,))
    assert sorted(p.name for p in root.iterdir()) == [
        "drive_0003_right.intrinsics.txt", "drive_0003_right.mp4", "intrinsics.txt", "splits",
    ]  # fmt: skip
    spec = read_intrinsics_file(root / "drive_0003_right.intrinsics.txt")
    np.testing.assert_allclose(spec.values, pixel_K(synthetic_root, 3).ravel(), rtol=1e-9)
    assert (root / "splits" / "train_files.txt").read_text() == ""
    assert (root / "splits" / "val_files.txt").read_text() == "drive_0003_right.mp4\n"
    datamodule = KittiDataModule(
        str(root), dataset="video", split=str(root / "splits"), height=64, width=192, depth="none"
    )
    assert [s.name for s in datamodule.build_dataset("val").sequences] == ["drive_0003_right.mp4"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="avi"), "kind='avi': choose 'mp4' or 'folder'"),
        (dict(cameras=(2, 4)), "cameras=(2, 4): the synthetic drives have cameras 2 and 3"),
    ],
)
def test_bad_kind_or_camera(synthetic_root, tmp_path, kwargs, message):
    with pytest.raises(ValueError) as error:
        write_video_tree(synthetic_root, tmp_path / "out", **kwargs)
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()
