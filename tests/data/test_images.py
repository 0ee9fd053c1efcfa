"""One loader for colour frames: 16-bit grayscale is scaled, not clipped to white; grayscale
frames are told once per dataset; pixels without a colour range are refused."""

import warnings

import numpy as np
import pytest
from kitti_tree import DRIVE
from PIL import Image

from mono.data.images import ImageDecodeError, read_colour
from mono.data.kitti import KittiRawDataset
from mono.data.splits import read_split

# 16-bit values and their 8-bit equivalents: x / 257 rounded (65535 -> 255).
GRAY16 = np.array([[0, 257, 65535, 32896], [514, 1000, 30000, 65278]], dtype=np.uint16)
GRAY8 = np.array([[0, 1, 255, 128], [2, 4, 117, 254]], dtype=np.uint8)


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def test_16_bit_grayscale_is_scaled_by_its_bit_depth(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(GRAY16).save(path)
    assert Image.open(path).mode == "I;16"
    assert np.array_equal(read_colour(path), _rgb(GRAY8))


def test_32_bit_pixels_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "g.tif"
    Image.fromarray(GRAY16.astype(np.int32)).save(path)
    with pytest.raises(ImageDecodeError) as info:
        read_colour(path)
    assert str(info.value) == (
        f"{path} holds 32-bit integer pixels (PIL mode I), not a colour frame; save frames as "
        "8-bit RGB (16-bit grayscale is scaled by 1/257)"
    )


@pytest.mark.parametrize("dtype, bits", [(np.uint8, "8-bit"), (np.uint16, "16-bit")])
def test_grayscale_training_frames_are_told_once_per_dataset(kitti_root, dtype, bits):
    frames = kitti_root / DRIVE / "image_02" / "data"
    for frame in range(5):
        Image.fromarray(GRAY16 if dtype == np.uint16 else GRAY8).save(frames / f"{frame:010d}.png")
    path = kitti_root / "splits" / "tiny" / "train_files.txt"
    entries = read_split(path)[:3]  # the left-camera lines
    dataset = KittiRawDataset(kitti_root, entries, frame_ids=("0",), split_file=path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [dataset[i] for i in range(3)]
    assert [str(w.message) for w in caught] == [
        f"{frames / '0000000001.png'} is a {bits} grayscale image: its gray is copied into R, G "
        f"and B, while the networks expect colour; further grayscale frames of {path} are not "
        "reported"
    ]
    assert samples[0].images[0].permute(1, 2, 0).numpy().tolist() == _rgb(GRAY8).tolist()


def test_predict_and_evaluation_read_16_bit_grayscale_as_gray(tmp_path):
    from mono.evaluation.depth import load_image
    from mono.predict import read_frames

    path = tmp_path / "g.png"
    Image.fromarray(GRAY16).save(path)
    with pytest.warns(UserWarning, match="16-bit grayscale image"):
        ((name, image),) = list(read_frames(path))
    assert name == "g" and np.array_equal(np.asarray(image), _rgb(GRAY8))
    h, w = GRAY16.shape
    with pytest.warns(UserWarning, match="16-bit grayscale image"):
        tensor = load_image(path, h, w, grayscale=_notice())
    assert np.allclose(tensor.permute(1, 2, 0).numpy() * 255, _rgb(GRAY8))


def _notice():
    from mono.data.images import GrayscaleNotice

    return GrayscaleNotice("the test images")
