"""data.depth: auto decides each split's ground truth once, says so, and a monitor needing it
fails before training instead of after an epoch ("could not find the monitored key")."""

import shutil

import pytest
import pytorch_lightning as pl
from kitti_tree import DATE, DRIVE
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from mono.data.datamodule import KittiDataModule


def _module(root, **kwargs) -> KittiDataModule:
    options = dict(split="splits/tiny", height=32, width=64, batch_size=2, num_workers=0)
    options.update(kwargs)
    return KittiDataModule(str(root), **options)


def _without_dense_maps(root):
    """The usual KITTI raw download: LiDAR scans, no depth-benchmark maps."""
    shutil.rmtree(root / DRIVE / "proj_depth")
    return root


def _attach(dm: KittiDataModule, *callbacks) -> None:
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, callbacks=list(callbacks), enable_progress_bar=False
    )
    dm.trainer = trainer


def test_each_split_says_which_ground_truth_it_loads(kitti_root, capsys):
    _module(kitti_root).setup("fit")
    # Dense maps exist for camera 2 only, so both splits (left and right lines) fall to LiDAR.
    assert capsys.readouterr().out.splitlines() == [
        "train ground truth: lidar (6 of 6 samples)",
        "val ground truth: lidar (2 of 2 samples)",
    ]


def test_a_missing_velodyne_calibration_is_named(kitti_root, capsys):
    _without_dense_maps(kitti_root)
    (kitti_root / DATE / "calib_velo_to_cam.txt").unlink()
    dm = _module(kitti_root)
    dm.setup("validate")
    assert capsys.readouterr().out.splitlines() == [
        f"val ground truth: none (calib_velo_to_cam.txt missing in {kitti_root / DATE})"
    ]
    assert dm.datasets["val"].depth_source == "none"


def test_one_missing_scan_is_named_with_its_split_line(kitti_root, capsys):
    scan = kitti_root / DRIVE / "velodyne_points" / "data" / "0000000003.bin"
    scan.unlink()
    _module(kitti_root).setup("validate")
    val = kitti_root / "splits" / "tiny" / "val_files.txt"
    dense = kitti_root / DRIVE / "proj_depth" / "groundtruth" / "image_03" / "0000000003.png"
    # Some dense maps exist, so why they do not serve is said too.
    assert capsys.readouterr().out.splitlines() == [
        f"val ground truth: none (dense depth maps for 1 of 2 samples: {dense} is missing, needed "
        f"by {val}:2 ('{DRIVE} 3 r'); LiDAR scans for 1 of 2 samples: {scan} is missing, needed "
        f"by {val}:2 ('{DRIVE} 3 r'))"
    ]


def test_explicit_none_says_so(kitti_root, capsys):
    _module(kitti_root, depth="none").setup("validate")
    assert capsys.readouterr().out.splitlines() == ["val ground truth: none (data.depth='none')"]


@pytest.mark.parametrize("kind", [ModelCheckpoint, EarlyStopping])
def test_a_val_monitor_without_ground_truth_fails_before_training(kitti_root, kind):
    _without_dense_maps(kitti_root)
    (kitti_root / DATE / "calib_velo_to_cam.txt").unlink()
    dm = _module(kitti_root)
    _attach(dm, kind(monitor="val/abs_rel"))
    with pytest.raises(ValueError) as info:
        dm.setup("fit")
    val = kitti_root / "splits" / "tiny" / "val_files.txt"
    assert str(info.value) == (
        f"{kind.__name__} monitors 'val/abs_rel', a validation metric that needs ground truth, "
        f"but data.depth='auto' found none for {val}: calib_velo_to_cam.txt missing in "
        f"{kitti_root / DATE}; add the missing file, set data.depth='lidar' or 'dense' to list "
        "every missing file, or monitor another key"
    )


def test_a_val_monitor_with_depth_none_is_refused(kitti_root):
    dm = _module(kitti_root, depth="none")
    _attach(dm, ModelCheckpoint(monitor="val/a1", mode="max"))
    with pytest.raises(ValueError) as info:
        dm.setup("fit")
    val = kitti_root / "splits" / "tiny" / "val_files.txt"
    assert str(info.value) == (
        "ModelCheckpoint monitors 'val/a1', a validation metric that needs ground truth, but "
        f"data.depth='none' loads none for {val}; set data.depth to 'auto', 'lidar' or 'dense', "
        "or monitor another key"
    )


def test_monitors_that_need_no_ground_truth_pass(kitti_root):
    (kitti_root / DATE / "calib_velo_to_cam.txt").unlink()
    dm = _module(kitti_root)
    _attach(dm, ModelCheckpoint(monitor="train/loss"), ModelCheckpoint())
    dm.setup("fit")
    assert dm.datasets["val"].depth_source == "none"
