"""The video layout: intrinsics files, decoding, static frames, stride, split, samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mono.data.datamodule import KittiDataModule
from mono.data.intrinsics_file import (
    IntrinsicsFileError,
    crop_box,
    cropped_intrinsics,
    read_intrinsics_file,
)
from mono.data.synth_video import (
    drive_frames,
    pixel_K,
    synthetic_drives,
    write_k_file,
    write_video_tree,
)
from mono.data.video import PLACEHOLDER_HFOV, VideoDataset, split_sequences
from mono.data.video_source import VideoDataError, decode_video, discover_sequences


@pytest.fixture(scope="module")
def mp4_root(synthetic_root, tmp_path_factory) -> Path:
    return write_video_tree(synthetic_root, tmp_path_factory.mktemp("mp4"), "mp4")


@pytest.fixture(scope="module")
def folder_root(synthetic_root, tmp_path_factory) -> Path:
    return write_video_tree(synthetic_root, tmp_path_factory.mktemp("folders"), "folder")


def _dataset(root: Path, **kwargs) -> VideoDataset:
    options = dict(height=64, width=192, cache_dir=root / ".cache_test")
    options.update(kwargs)
    return VideoDataset(root, discover_sequences(root), **options)


# ------------------------------------------------------------------ intrinsics files
def _k_file(tmp_path, text: str) -> Path:
    path = tmp_path / "intrinsics.txt"
    path.write_text(text)
    return path


def test_the_three_intrinsics_formats(tmp_path):
    K = read_intrinsics_file(_k_file(tmp_path, "K: 100 0 50 0 120 30 0 0 1  # px\n"))
    np.testing.assert_allclose(K.normalised(60, 100), [[1.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])
    normalised = read_intrinsics_file(_k_file(tmp_path, "# KITTI\nnormalized: 0.58 1.92 0.5 0.5"))
    np.testing.assert_allclose(
        normalised.normalised(375, 1242)[:2].ravel(), [0.58, 0, 0.5, 0, 1.92, 0.5]
    )
    # 90 degrees across 200 px: fx = 100 px = 0.5 of the width; fy = 100 px / 50 px = 2.
    hfov = read_intrinsics_file(_k_file(tmp_path, "hfov: 90"))
    np.testing.assert_allclose(hfov.normalised(50, 200), [[0.5, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "K: 100 0 50 0 120 30 0 0\n",
            ":1: 'K' needs 9 numbers, got 8: 'K: 100 0 50 0 120 30 0 0'",
        ),
        ("\nnormalized: 0.5 x 0.5 0.5", ":2: 'normalized' holds a non-number"),
        ("normalized: 0.5 nan 0.5 0.5", ":1: 'normalized' holds a non-finite number"),
        (
            "K: 100 1 50 0 120 30 0 0 1",
            ":1: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)",
        ),
        ("normalized: 0.5 -1 0.5 0.5", ":1: focal lengths fx=0.5, fy=-1 must be > 0"),
        ("hfov: 180", ":1: hfov=180 must be in (0, 180) degrees"),
        ("fov: 60", ":1: expected one line 'K: 9 numbers' (pixels), 'normalized: fx fy cx cy'"),
        ("# nothing\n", " is empty: expected one line"),
        ("hfov: 60\nhfov: 70\n", " has 2 entries (lines [1, 2]): expected one line"),
    ],
)
def test_invalid_intrinsics_files_name_file_and_line(tmp_path, text, message):
    path = _k_file(tmp_path, text)
    with pytest.raises(IntrinsicsFileError) as error:
        read_intrinsics_file(path)
    assert str(error.value).startswith(str(path) + message)


def test_principal_point_outside_the_frames(tmp_path):
    spec = read_intrinsics_file(_k_file(tmp_path, "K: 100 0 150 0 120 30 0 0 1"))
    with pytest.raises(IntrinsicsFileError, match=r"principal point \(150, 30\) px lies outside"):
        spec.normalised(60, 100)


def test_crop_keeps_the_network_aspect_and_moves_the_principal_point():
    # A 1080x1920 phone frame for a 192x640 network keeps 1920 / 640 * 192 = 576 rows.
    assert crop_box(1080, 1920, 192, 640) == (252, 0, 576, 1920)
    assert crop_box(80, 256, 64, 192) == (0, 8, 80, 240)
    K_norm = np.array([[100 / 256, 0, 128 / 256], [0, 90 / 80, 40 / 80], [0, 0, 1]])
    K = cropped_intrinsics(K_norm, (80, 256), (0, 8, 80, 240))
    np.testing.assert_allclose(
        K, [[100 / 240, 0, 120 / 240], [0, 90 / 80, 0.5], [0, 0, 1]], rtol=1e-6
    )


# ------------------------------------------------------------------ decoding and cache
def test_decoding_fills_the_cache_once(synthetic_root, mp4_root, tmp_path, monkeypatch):
    drive = synthetic_drives(synthetic_root)[0]
    files, meta = decode_video(mp4_root / "drive_0001.mp4", tmp_path, 64, 192)
    assert len(files) == drive["frames"] == meta["frames"]
    assert meta["native_size"] == [80, 256] and meta["crop"] == [0, 8, 80, 240]
    decoded = np.asarray(Image.open(files[5]), dtype=np.float32)
    png = Image.open(drive_frames(synthetic_root, drive)[5]).crop((8, 0, 248, 80))
    expected = np.asarray(png.resize((192, 64), Image.Resampling.BICUBIC), dtype=np.float32)
    assert decoded.shape == (64, 192, 3)
    assert np.abs(decoded - expected).mean() < 3.0  # H.264 at CRF 12 and JPEG at quality 95

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(av, "open", no_decoding)
    assert decode_video(mp4_root / "drive_0001.mp4", tmp_path, 64, 192)[0] == files


def test_unreadable_and_empty_videos_are_named(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoDataError, match=rf"^{broken}: cannot decode the video \("):
        decode_video(broken, tmp_path / "cache", 64, 192)
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 32
        container.start_encoding()  # a header, and not one frame
    with pytest.raises(VideoDataError, match=rf"^{empty}: the video has no frames"):
        decode_video(empty, tmp_path / "cache", 64, 192)
    assert not (tmp_path / "cache" / "empty.mp4" / "64x192").exists()


def test_zero_byte_video_fails_before_training(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "clip.mov").write_bytes(b"")
    write_k_file(root / "intrinsics.txt", np.array([[100, 0, 32], [0, 100, 16], [0, 0, 1.0]]))
    with pytest.raises(VideoDataError, match=rf"^{root / 'clip.mov'}: cannot decode the video"):
        _dataset(root).check_files()


# ------------------------------------------------------------------ static frames and stride
@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_static_filter_removes_the_stationary_stretch_only(
    synthetic_root, mp4_root, folder_root, kind
):
    root = mp4_root if kind == "mp4" else folder_root
    dataset = _dataset(root, static_threshold=1.0)
    dataset.check_files()
    for drive, timeline in zip(synthetic_drives(synthetic_root), dataset.timelines, strict=True):
        first, last = drive["stationary"]
        # The stretch shrinks to its first frame; every moving frame stays.
        expected = [t for t in range(drive["frames"]) if not first < t <= last]
        assert [int(p.stem) for p in timeline.files] == expected
        assert dataset.removed_static[timeline.name] == last - first == 3
    unfiltered = _dataset(root)
    unfiltered.check_files()
    assert len(unfiltered) - len(dataset) == 3 * len(dataset.timelines)


def test_stride_counts_frames_on_the_timeline(folder_root):
    dataset = _dataset(folder_root, frame_stride=3)
    dataset.check_files()
    sample = dataset.read(0)  # target = timeline position 1 = frame 3, sources frames 0 and 6
    expected = [
        np.asarray(Image.open(folder_root / "drive_0001" / f"{t:010d}.png"))[:, 8:248]
        for t in (3, 0, 6)
    ]
    np.testing.assert_array_equal(sample.images, np.stack(expected))
    assert len(dataset) == 4 * (8 - 2)  # 24 frames -> 8 per drive, 6 targets with both neighbours


def test_stride_that_leaves_no_samples(folder_root):
    with pytest.raises(VideoDataError) as error:
        _dataset(folder_root, frame_stride=12).check_files()
    assert str(error.value) == (
        "data.frame_stride=12 leaves no samples: the longest sequence keeps 2 frame(s) "
        "(static frames removed: 0) and data.frame_ids ['0', '-1', '1'] span 3"
    )


def test_sequence_shorter_than_the_frame_window(folder_root, tmp_path):
    root = tmp_path / "short"
    shutil.copytree(folder_root / "drive_0001", root / "clip")
    for path in sorted((root / "clip").glob("*.png"))[2:]:
        path.unlink()
    shutil.copy(folder_root / "intrinsics.txt", root)
    with pytest.raises(VideoDataError) as error:
        _dataset(root).check_files()
    assert str(error.value) == (
        f"sequence 'clip' ({root / 'clip'}) has 2 frame(s); data.frame_ids ['0', '-1', '1'] span 3"
    )


def test_missing_intrinsics_names_both_places(folder_root, tmp_path):
    root = tmp_path / "noK"
    shutil.copytree(folder_root / "drive_0001", root / "clip")
    with pytest.raises(IntrinsicsFileError) as error:
        _dataset(root).check_files()
    assert str(error.value).startswith(
        f"no intrinsics for sequence 'clip': write {root / 'clip' / 'intrinsics.txt'} or "
        f"{root / 'intrinsics.txt'} with one line 'K: 9 numbers'"
    )


def test_learned_intrinsics_need_no_file(folder_root, tmp_path):
    """With data.intrinsics='learned' a sequence without a K file gets the placeholder camera
    (60 degrees, centred), which only the learned camera replaces."""
    root = tmp_path / "noK"
    shutil.copytree(folder_root / "drive_0001", root / "clip")
    dataset = _dataset(root, learned_intrinsics=True)
    dataset.check_files()
    K = dataset[0].K.numpy()
    fx = 0.5 / np.tan(np.radians(PLACEHOLDER_HFOV / 2))  # normalised by the frame's width
    fx *= 256 / 240  # the 256 x 80 frames are cropped to 240 x 80, the network's 3:1
    np.testing.assert_allclose(K[0], [fx, 0, 0.5], rtol=1e-6, atol=1e-6)


def test_learned_intrinsics_are_for_videos_and_learned_cameras(synthetic_root, tmp_path):
    with pytest.raises(ValueError) as error:
        KittiDataModule(str(synthetic_root), split="splits", intrinsics="learned")
    assert str(error.value).startswith(
        "data.intrinsics='learned' applies to data.dataset=video only (data.dataset=kitti_raw"
    )
    from types import SimpleNamespace

    from mono.module import DepthModel

    model = DepthModel(64, 192, pretrained=False)
    datamodule = SimpleNamespace(hparams={"intrinsics": "learned"})
    model._trainer = SimpleNamespace(datamodule=datamodule)
    with pytest.raises(ValueError, match=r"^data.intrinsics='learned' needs model.learn_intr"):
        model.setup("fit")
    learning = DepthModel(64, 192, pretrained=False, learn_intrinsics=True)
    learning._trainer = SimpleNamespace(datamodule=datamodule)
    learning.setup("fit")


# ------------------------------------------------------------------ samples
@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_samples_carry_the_k_file_after_the_crop(synthetic_root, mp4_root, folder_root, kind):
    root = mp4_root if kind == "mp4" else folder_root
    dataset = _dataset(root, train=True)
    dataset.check_files()
    K_px = pixel_K(synthetic_root)  # at 256x80; the crop keeps columns 8..247
    expected = np.array(
        [
            [K_px[0, 0] / 240, 0, (K_px[0, 2] - 8) / 240],
            [0, K_px[1, 1] / 80, K_px[1, 2] / 80],
            [0, 0, 1],
        ]
    )
    flips = set()
    for i in range(8):
        sample = dataset[i]
        K = sample.K.numpy().astype(np.float64)
        if sample.flip:
            K[0, 2] = 1.0 - K[0, 2]
        flips.add(sample.flip)
        np.testing.assert_allclose(K, expected, rtol=1e-6)
        assert torch.equal(sample.T_stereo, torch.eye(4)) and sample.depth_gt is None
        assert sample.images.shape[:2] == (3, 3)
        assert sample.images.shape[2:] == ((64, 192) if kind == "mp4" else (80, 240))
    assert flips == {False, True}


# ------------------------------------------------------------------ split
def test_generated_split_is_seeded_and_disjoint(tmp_path):
    names = [f"seq{i:02d}" for i in range(20)]
    train, val, _ = split_sequences(names, "auto", None, tmp_path, 0.1, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == names
    assert split_sequences(names, "auto", None, tmp_path, 0.1, seed=3)[:2] == (train, val)
    vals = {tuple(split_sequences(names, "auto", None, tmp_path, 0.1, seed=s)[1]) for s in range(5)}
    assert len(vals) > 1
    assert split_sequences(names[:1], "auto", None, tmp_path, 0.1, seed=0)[:2] == (names[:1], [])
    assert split_sequences(names[:2], "auto", None, tmp_path, 0.1, seed=0)[1] != []


def test_split_files_override_and_are_checked(tmp_path):
    names = ["a.mp4", "b", "c"]
    split = tmp_path / "mysplit"
    split.mkdir()
    (split / "train_files.txt").write_text("a.mp4\nb\n")
    (split / "val_files.txt").write_text("c\n")
    assert split_sequences(names, str(split), None, tmp_path, 0.1, 0)[:2] == (["a.mp4", "b"], ["c"])
    (split / "val_files.txt").write_text("c\nb\n")
    with pytest.raises(ValueError, match=r"sequence\(s\) \['b'\] are in both .*train_files.txt"):
        split_sequences(names, str(split), None, tmp_path, 0.1, 0)
    (split / "val_files.txt").write_text("\nd\n")
    with pytest.raises(ValueError, match=r"val_files.txt:2: unknown sequence 'd' \(known: "):
        split_sequences(names, str(split), None, tmp_path, 0.1, 0)


def test_datamodule_builds_disjoint_train_and_val(mp4_root, tmp_path):
    dm = KittiDataModule(
        str(mp4_root), dataset="video", split="auto", height=64, width=192, batch_size=2,
        num_workers=0, val_fraction=0.25, cache_dir=str(tmp_path), static_threshold=1.0,
    )  # fmt: skip
    dm.setup("fit")
    train = {t.name for t in dm.datasets["train"].timelines}
    val = {t.name for t in dm.datasets["val"].timelines}
    assert len(val) == 1 and len(train) == 3 and not train & val
    batch = next(iter(dm.train_dataloader()))
    assert batch.images.shape == (2, 3, 3, 64, 192)
    with pytest.raises(ValueError, match="data.dataset=video has no test stage"):
        dm.setup("test")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"frame_stride": 0}, "data.frame_stride=0 must be an integer >= 1"),
        ({"static_threshold": -1.0}, "data.static_threshold=-1.0 must be >= 0"),
        ({"val_fraction": 1.0}, r"data.val_fraction=1.0 must be in \[0, 1\)"),
        ({"frame_ids": ["0", "s"]}, "'s' needs a stereo pair, and data.dataset=video is monocular"),
        ({"depth": "lidar"}, "data.depth='lidar': data.dataset=video has no ground truth"),
        ({"split": "eigen_zhou"}, "data.split='eigen_zhou' is a KITTI split"),
    ],
)
def test_video_options_are_checked_when_built(tmp_path, kwargs, message):
    options = dict(dataset="video", split="auto", height=64, width=192)
    with pytest.raises(ValueError, match=message):
        KittiDataModule(str(tmp_path), **{**options, **kwargs})
