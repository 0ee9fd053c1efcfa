import numpy as np
import pytest
import torch
from kitti_tree import BASELINE, CX, CY, DATE, DRIVE, FX, FY, LIDAR_DEPTH, H, W, frame_image
from PIL import Image

from mono.data.calib import MONODEPTH2_K
from mono.data.kitti import KittiRawDataset
from mono.data.sample import collate
from mono.data.splits import SplitEntry, read_split


def _dataset(root, split="train", **kwargs):
    path = root / "splits" / "tiny" / f"{split}_files.txt"
    return KittiRawDataset(root, read_split(path), split_file=path, **kwargs)


def _image_file(root, frame, camera=2, ext="png"):
    return root / DRIVE / f"image_0{camera}" / "data" / f"{frame:010d}.{ext}"


def _first_flipped(dataset, flipped=True, epoch=0):
    for i in range(len(dataset)):
        if dataset.draw_augmentation(i, epoch)[0] == flipped:
            return i
    raise AssertionError("no sample with the wanted flip")


# ------------------------------------------------------------------ check_files
def test_check_files_passes_on_a_complete_tree(kitti_root):
    dataset = _dataset(kitti_root, frame_ids=("0", "-1", "1", "s"), depth="auto")
    dataset.check_files()
    assert dataset.depth_source == "lidar"  # dense GT exists for camera 2 only


def test_check_files_names_missing_image_and_split_line(kitti_root):
    _image_file(kitti_root, 4).unlink()
    _image_file(kitti_root, 0).unlink()
    dataset = _dataset(kitti_root)
    with pytest.raises(FileNotFoundError) as info:
        dataset.check_files()
    message = str(info.value)
    # Line 1 (frame 1 l) needs frame 0 through offset -1; line 3 (frame 3 l) needs frame 4.
    assert str(_image_file(kitti_root, 0)) in message
    assert "frame '-1'" in message
    assert f"train_files.txt:1 ('{DRIVE} 1 l')" in message
    assert "1 further files are missing" in message


def test_check_files_names_missing_calibration(kitti_root):
    (kitti_root / DATE / "calib_cam_to_cam.txt").unlink()
    _dataset(kitti_root).check_files()  # Monodepth2's fixed K needs no calibration
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt is missing") as info:
        _dataset(kitti_root, intrinsics="calib").check_files()
    assert "train_files.txt:1" in str(info.value)


def test_check_files_lidar_needs_velo_calibration(kitti_root):
    (kitti_root / DATE / "calib_velo_to_cam.txt").unlink()
    with pytest.raises(FileNotFoundError, match="calib_velo_to_cam.txt is missing"):
        _dataset(kitti_root, depth="lidar").check_files()
    dataset = _dataset(kitti_root, depth="auto")
    dataset.check_files()  # auto falls back to no ground truth
    assert dataset.depth_source == "none"


def test_check_files_names_missing_ground_truth(kitti_root):
    with pytest.raises(FileNotFoundError, match="dense ground truth") as info:
        _dataset(kitti_root, depth="dense").check_files()
    assert "image_03" in str(info.value)  # dense GT exists for camera 2 only


def test_auto_depth_prefers_dense_then_lidar_then_none(kitti_root):
    entries = [SplitEntry(DRIVE, f, "l") for f in (1, 2, 3)]
    dataset = KittiRawDataset(kitti_root, entries, depth="auto")
    dataset.check_files()
    assert dataset.depth_source == "dense"
    (kitti_root / DRIVE / "proj_depth/groundtruth/image_02/0000000002.png").unlink()
    dataset = KittiRawDataset(kitti_root, entries, depth="auto")
    dataset.check_files()
    assert dataset.depth_source == "lidar"
    (kitti_root / DRIVE / "velodyne_points/data/0000000003.bin").unlink()
    dataset = KittiRawDataset(kitti_root, entries, depth="auto")
    dataset.check_files()
    assert dataset.depth_source == "none"
    assert dataset[0].depth_gt is None


# ------------------------------------------------------------------ frames, K, stereo
def test_offsets_and_stereo_load_the_right_files(kitti_root):
    entries = [SplitEntry(DRIVE, 2, "l"), SplitEntry(DRIVE, 3, "r")]
    dataset = KittiRawDataset(kitti_root, entries, frame_ids=("0", "-1", "1", "s"))
    left = dataset[0].images
    assert left.shape == (4, 3, H, W) and left.dtype == torch.uint8
    assert left[:, 0, 0, 0].tolist() == [20, 10, 30, 20]  # red = 10 * frame
    assert left[:, 1, 0, 0].tolist() == [2, 2, 2, 3]  # green = camera
    right = dataset[1].images
    assert right[:, 0, 0, 0].tolist() == [30, 20, 40, 30]
    assert right[:, 1, 0, 0].tolist() == [3, 3, 3, 2]
    expected = torch.from_numpy(frame_image(2, "l")).permute(2, 0, 1)
    assert torch.equal(left[0], expected)


def test_jpg_images_are_found_with_auto_extension(tmp_path):
    from kitti_tree import write_kitti_tree

    root = write_kitti_tree(tmp_path, ext="jpg")
    dataset = _dataset(root)
    dataset.check_files()
    assert dataset.image_file(dataset.entries[0], "0").suffix == ".jpg"
    with pytest.raises(FileNotFoundError, match=r"0000000001\.png"):
        _dataset(root, img_ext="png").check_files()


def test_default_intrinsics_are_monodepth2s(kitti_root):
    assert np.array_equal(_dataset(kitti_root)[0].K.numpy(), MONODEPTH2_K)


def test_calib_intrinsics_match_p_rect_shifted_to_zero_based(kitti_root):
    K = _dataset(kitti_root, intrinsics="calib")[0].K.numpy()
    expected = np.array(
        [[FX / W, 0, (CX - 1) / W], [0, FY / H, (CY - 1) / H], [0, 0, 1]], dtype=np.float32
    )
    np.testing.assert_allclose(K, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "side, baseline, expected",
    [("l", 0.1, -0.1), ("r", 0.1, 0.1), ("l", "calib", -BASELINE), ("r", "calib", BASELINE)],
)
def test_stereo_transform_sign(kitti_root, side, baseline, expected):
    dataset = KittiRawDataset(kitti_root, [SplitEntry(DRIVE, 2, side)], stereo_baseline=baseline)
    T = dataset[0].T_stereo.numpy()
    want = np.eye(4, dtype=np.float32)
    want[0, 3] = expected
    np.testing.assert_allclose(T, want, atol=1e-6)


# ------------------------------------------------------------------ augmentation
def test_flip_mirrors_images_depth_cx_and_stereo_sign(kitti_root):
    train = _dataset(kitti_root, train=True, intrinsics="calib", depth="lidar")
    plain = _dataset(kitti_root, intrinsics="calib", depth="lidar")
    i = _first_flipped(train)
    assert plain.entries[i].side == "l"  # the split's first three lines are left images
    flipped, original = train[i], plain[i]
    assert flipped.flip and not original.flip
    assert torch.equal(flipped.images, original.images.flip(-1))
    assert flipped.images[0, 2, 0].tolist() == [20 * c for c in reversed(range(W))]
    assert torch.equal(flipped.depth_gt, original.depth_gt.flip(-1))
    assert flipped.K[0, 2].item() == pytest.approx(1.0 - original.K[0, 2].item())
    assert flipped.K[1, 2] == original.K[1, 2]
    assert flipped.T_stereo[0, 3].item() == pytest.approx(0.1)  # left, flipped: +
    assert original.T_stereo[0, 3].item() == pytest.approx(-0.1)


def test_augmentation_depends_only_on_seed_epoch_index(kitti_root):
    a = _dataset(kitti_root, train=True, seed=3)
    b = _dataset(kitti_root, train=True, seed=3)
    torch.manual_seed(123)  # the global RNG must not matter
    draws = [a.draw_augmentation(i, 1) for i in range(6)]
    torch.manual_seed(456)
    for i in reversed(range(6)):
        flip, jitter = b.draw_augmentation(i, 1)
        assert flip == draws[i][0] and np.array_equal(jitter, draws[i][1])
    other_epoch = [a.draw_augmentation(i, 2) for i in range(6)]
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(draws, other_epoch, strict=True))
    # (epoch, index) keys and set_epoch give the same sample.
    b.set_epoch(1)
    for i in range(6):
        s1, s2 = a[(1, i)], b[i]
        assert s1.flip == s2.flip and torch.equal(s1.jitter, s2.jitter)
        assert torch.equal(s1.images, s2.images)


def test_jitter_ranges_and_rates(kitti_root):
    dataset = _dataset(kitti_root, train=True)
    flips, jittered = 0, 0
    for i in range(400):
        flip, jitter = dataset.draw_augmentation(i % len(dataset), i)
        flips += flip
        if np.array_equal(jitter, [1, 1, 1, 0]):
            continue
        jittered += 1
        assert np.all((jitter[:3] >= 0.8) & (jitter[:3] <= 1.2)) and abs(jitter[3]) <= 0.1
    assert 150 < flips < 250 and 150 < jittered < 250  # p = 0.5 each


def test_evaluation_samples_are_not_augmented(kitti_root):
    dataset = _dataset(kitti_root, train=False)
    for i in range(len(dataset)):
        sample = dataset[i]
        assert not sample.flip
        assert sample.jitter.tolist() == [1.0, 1.0, 1.0, 0.0]


# ------------------------------------------------------------------ ground truth
def test_lidar_ground_truth_lands_on_the_projected_pixel(kitti_root):
    entries = [SplitEntry(DRIVE, 2, "l"), SplitEntry(DRIVE, 2, "r")]
    dataset = KittiRawDataset(kitti_root, entries, depth="lidar")
    dataset.check_files()
    for i, (v, u) in enumerate([(2, 4), (2, 3)]):
        # u = round(CX +- FX * t / z) - 1 with t = +0.06 (camera 2) / -0.48 (camera 3).
        depth = dataset[i].depth_gt
        assert depth.shape == (1, H, W) and depth.dtype == torch.float32
        assert depth[0, v, u].item() == pytest.approx(LIDAR_DEPTH)
        assert torch.count_nonzero(depth).item() == 1


def test_dense_ground_truth_is_uint16_over_256(kitti_root):
    dataset = KittiRawDataset(kitti_root, [SplitEntry(DRIVE, 1, "l")], depth="dense")
    depth = dataset[0].depth_gt
    assert depth.shape == (1, H, W)
    assert torch.all(depth == 12.5)


# ------------------------------------------------------------------ collate
def test_collate_pads_to_the_largest_size(kitti_root):
    small = frame_image(1, "l", h=H - 1, w=W - 2)
    Image.fromarray(small).save(_image_file(kitti_root, 1, camera=3))
    entries = [SplitEntry(DRIVE, 1, "l"), SplitEntry(DRIVE, 1, "r")]
    dataset = KittiRawDataset(kitti_root, entries, frame_ids=("0",), depth="lidar")
    batch = collate([dataset[0], dataset[1]])
    assert batch.images.shape == (2, 1, 3, H, W)
    assert batch.sizes.tolist() == [[H, W], [H - 1, W - 2]]
    assert torch.equal(batch.images[1, 0, :, : H - 1, : W - 2], dataset[1].images[0])
    assert batch.images[1, :, :, H - 1 :].abs().sum() == 0
    assert batch.images[1, :, :, :, W - 2 :].abs().sum() == 0
    assert batch.depth_gt.shape == (2, 1, H, W)
    assert batch.index.tolist() == [0, 1]
    assert batch.flip.dtype == torch.bool and batch.jitter.shape == (2, 4)
    assert batch.K.shape == (2, 3, 3) and batch.T_stereo.shape == (2, 4, 4)


def test_collate_refuses_partial_ground_truth(kitti_root):
    with_gt = KittiRawDataset(kitti_root, [SplitEntry(DRIVE, 1, "l")], depth="dense")[0]
    without = KittiRawDataset(kitti_root, [SplitEntry(DRIVE, 1, "l")])[0]
    with pytest.raises(ValueError, match="some samples have depth_gt"):
        collate([with_gt, without])


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frame_ids": ("-1", "0")}, "target frame '0' must come first"),
        ({"frame_ids": ("0", "x")}, "'x' is neither"),
        ({"frame_ids": ("0", "1", "1")}, "duplicates"),
        ({"img_ext": "bmp"}, "img_ext='bmp'"),
        ({"intrinsics": "fixed"}, "intrinsics='fixed'"),
        ({"depth": "sparse"}, "depth='sparse'"),
        ({"stereo_baseline": -0.1}, "stereo_baseline=-0.1"),
    ],
)
def test_bad_options_are_named(kitti_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        KittiRawDataset(kitti_root, [SplitEntry(DRIVE, 1, "l")], **kwargs)
