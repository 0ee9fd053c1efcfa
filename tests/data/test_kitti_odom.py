"""The KITTI odometry layout: files, K and baseline from calib.txt, errors, split, poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from kitti_odom_tree import write_kitti_odom_tree
from PIL import Image

from mono.data.calib import MONODEPTH2_K
from mono.data.datamodule import KittiDataModule
from mono.data.kitti_odom import KittiOdomDataset
from mono.data.splits import SPLITS_DIR, SplitEntry, read_split
from mono.data.synth_video import synthetic_drives
from mono.evaluation import pose


@pytest.fixture(scope="module")
def odom_root(synthetic_root, tmp_path_factory) -> Path:
    return write_kitti_odom_tree(synthetic_root, tmp_path_factory.mktemp("odom"))


def _png(root: Path, sequence: int, camera: int, frame: int) -> torch.Tensor:
    path = root / "sequences" / f"{sequence:02d}" / f"image_{camera}" / f"{frame:06d}.png"
    return torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)


def test_frames_k_and_baseline_come_from_the_odometry_layout(odom_root):
    entries = [SplitEntry("1", 5, "l"), SplitEntry("1", 7, "r")]
    dataset = KittiOdomDataset(
        odom_root, entries, frame_ids=("0", "-1", "1", "s"), intrinsics="calib",
        stereo_baseline="calib",
    )  # fmt: skip
    dataset.check_files()
    left, right = dataset[0], dataset[1]
    for sample, (camera, other, frame) in ((left, (2, 3, 5)), (right, (3, 2, 7))):
        expected = [_png(odom_root, 1, camera, frame + d) for d in (0, -1, 1)]
        expected.append(_png(odom_root, 1, other, frame))
        assert torch.equal(sample.images, torch.stack(expected))
        # calib.txt's P2/P3 (1-based) normalised by the 256x80 images: Monodepth2's K.
        np.testing.assert_allclose(sample.K.numpy(), MONODEPTH2_K, atol=1e-6)
        assert sample.depth_gt is None
    # The synthetic rig's baseline is 0.54 m; the right camera is +x of the left one.
    assert left.T_stereo[0, 3].item() == pytest.approx(-0.54)
    assert right.T_stereo[0, 3].item() == pytest.approx(0.54)


def test_missing_image_names_the_split_line(odom_root, tmp_path):
    split = tmp_path / "train_files.txt"
    split.write_text("1 5 l\n2 23 l\n")
    dataset = KittiOdomDataset(odom_root, read_split(split), split_file=split)
    with pytest.raises(FileNotFoundError) as error:
        dataset.check_files()
    missing = odom_root / "sequences" / "02" / "image_2" / "000024.png"
    assert str(error.value).startswith(
        f"{missing} is missing: frame '1' (or .jpg) needed by {split}:2 ('2 23 l')"
    )


def test_bad_sequence_and_ground_truth_are_refused(odom_root, tmp_path):
    split = tmp_path / "train_files.txt"
    split.write_text("seq9 0 l\n")
    dataset = KittiOdomDataset(odom_root, read_split(split), split_file=split)
    with pytest.raises(ValueError, match=rf"^{split}:1: 'seq9' is not an odometry sequence"):
        dataset.check_files()
    with pytest.raises(ValueError, match="data.depth='lidar': data.dataset=kitti_odom has no"):
        KittiDataModule(str(odom_root), dataset="kitti_odom", split="odom", depth="lidar")


def test_shipped_odom_split_reads_as_sequences():
    entries = read_split(SPLITS_DIR / "odom" / "train_files.txt")
    assert {int(e.folder) for e in entries} == {0, 1, 2, 3, 4, 5, 6, 7, 8}
    dm = KittiDataModule("/nonexistent", dataset="kitti_odom", split="odom")
    dataset = dm.build_dataset("train")
    assert isinstance(dataset, KittiOdomDataset) and len(dataset) == 36671
    first = entries[0]  # "8 4056 r"
    assert dataset.image_file(first, "-1") == Path("/nonexistent/sequences/08/image_3/004055.png")


def test_pose_evaluation_reads_the_same_tree(synthetic_root, odom_root):
    paths, gt = pose.odometry_frames(odom_root, 9)
    drive = synthetic_drives(synthetic_root)[3]
    assert len(paths) == drive["frames"] and gt.shape == (drive["frames"], 4, 4)
    assert paths[4] == odom_root / "sequences" / "09" / "image_2" / "000004.png"
    dataset = KittiOdomDataset(odom_root, [SplitEntry("9", 4, "l")], frame_ids=("0",))
    assert dataset.image_file(dataset.entries[0], "0") == paths[4]
