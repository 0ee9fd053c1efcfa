import pytest
import torch
from kitti_tree import DRIVE, H, W

from mono.data.augment import color_jitter, prepare_batch, resize_frames
from mono.data.kitti import KittiRawDataset
from mono.data.sample import collate
from mono.data.splits import SplitEntry
from mono.types import Batch

IDENTITY = [1.0, 1.0, 1.0, 0.0]


def _batch(images, jitter=None, sizes=None, K=None, depth_gt=None) -> Batch:
    b = images.shape[0]
    if sizes is None:
        sizes = torch.tensor([list(images.shape[-2:])] * b)
    if K is None:
        K = torch.tensor([[0.5, 0.0, 0.25], [0.0, 1.0, 0.75], [0.0, 0.0, 1.0]]).repeat(b, 1, 1)
    return Batch(
        images=images,
        sizes=sizes,
        K=K,
        T_stereo=torch.eye(4).repeat(b, 1, 1),
        flip=torch.zeros(b, dtype=torch.bool),
        jitter=torch.tensor([IDENTITY] * b) if jitter is None else jitter,
        index=torch.arange(b),
        depth_gt=depth_gt,
    )


def _random_images(b=2, f=3, h=6, w=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, f, 3, h, w), generator=generator, dtype=torch.uint8)


def test_output_shapes_and_types():
    depth = torch.rand(2, 1, 6, 8)
    views = prepare_batch(_batch(_random_images(), depth_gt=depth), 32, 64)
    assert views.color.shape == views.color_aug.shape == (2, 3, 3, 32, 64)
    assert views.color.dtype == torch.float32
    assert 0.0 <= views.color.min() and views.color.max() <= 1.0
    assert views.depth_gt is depth  # ground truth stays at its native size
    assert views.sizes.tolist() == [[6, 8], [6, 8]]
    assert torch.equal(views.T_stereo, torch.eye(4).repeat(2, 1, 1))


def test_uint8_to_float_at_native_size_is_exact():
    images = _random_images()
    views = prepare_batch(_batch(images), 6, 8)
    assert torch.equal(views.color, images.float() / 255.0)


def test_constant_images_stay_constant_after_resize():
    images = torch.zeros(1, 2, 3, 6, 8, dtype=torch.uint8)
    images[:, 1] = 255
    color = prepare_batch(_batch(images), 32, 64).color
    assert torch.all(color[:, 0] == 0.0) and torch.all(color[:, 1] == 1.0)


def test_pixel_intrinsics_at_the_network_size():
    views = prepare_batch(_batch(_random_images()), 32, 64)
    expected = torch.tensor([[32.0, 0.0, 16.0], [0.0, 32.0, 24.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(views.K, expected.expand(2, 3, 3))


def test_padding_never_leaks_into_a_smaller_sample():
    images = torch.full((2, 1, 3, 6, 8), 255, dtype=torch.uint8)
    images[1, :, :, :4, :6] = 0  # sample 1 is a black 4x6 image, padded with white
    sizes = torch.tensor([[6, 8], [4, 6]])
    color = prepare_batch(_batch(images, sizes=sizes), 32, 64).color
    assert torch.all(color[1] == 0.0)
    assert torch.all(color[0] == 1.0)
    alone = resize_frames(images[1:, :, :, :4, :6], sizes[1:], 32, 64)
    assert torch.equal(color[1:], alone)


def test_identity_jitter_leaves_images_bit_identical():
    jitter = torch.tensor([IDENTITY, [1.1, 0.9, 1.2, 0.05]])
    views = prepare_batch(_batch(_random_images(), jitter=jitter), 32, 64)
    assert torch.equal(views.color_aug[0], views.color[0])
    assert not torch.equal(views.color_aug[1], views.color[1])


def test_zero_hue_shift_skips_the_hsv_round_trip():
    # rgb -> hsv -> rgb is not exact in float32, so a zero shift must not take it.
    color = prepare_batch(_batch(_random_images()), 32, 64).color
    out = color_jitter(color, torch.tensor([[1.1, 1.0, 1.0, 0.0]] * 2))
    assert torch.equal(out, (color * 1.1).clamp(0.0, 1.0))


def test_jitter_is_shared_by_all_frames_of_a_sample():
    images = _random_images(b=1, f=1).repeat(2, 3, 1, 1, 1)  # every frame identical
    jitter = torch.tensor([[1.2, 0.8, 1.1, 0.07], [0.9, 1.1, 0.8, -0.03]])
    aug = prepare_batch(_batch(images, jitter=jitter), 32, 64).color_aug
    for b in range(2):
        assert torch.equal(aug[b, 0], aug[b, 1]) and torch.equal(aug[b, 0], aug[b, 2])
    assert not torch.allclose(aug[0, 0], aug[1, 0])


def test_brightness_multiplies_and_clamps():
    x = torch.tensor([0.25, 0.5, 0.9]).view(1, 1, 3, 1, 1).expand(1, 1, 3, 2, 2)
    out = color_jitter(x, torch.tensor([[1.2, 1.0, 1.0, 0.0]]))
    assert torch.allclose(out[0, 0, :, 0, 0], torch.tensor([0.3, 0.6, 1.0]))


def test_contrast_blends_with_the_grey_mean():
    x = torch.zeros(1, 1, 3, 2, 2)
    x[..., 0, :] = 1.0  # half white, half black: grey mean 0.5
    out = color_jitter(x, torch.tensor([[1.0, 0.8, 1.0, 0.0]]))
    assert torch.allclose(out[0, 0, :, 0], torch.full((3, 2), 0.9))
    assert torch.allclose(out[0, 0, :, 1], torch.full((3, 2), 0.1))


def test_zero_saturation_gives_greyscale():
    x = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 3, 1, 1)
    out = color_jitter(x, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.allclose(out.flatten(), torch.full((3,), 0.299), atol=1e-3)


def test_hue_is_a_fraction_of_a_turn():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 3, 1, 1)
    out = color_jitter(red, torch.tensor([[1.0, 1.0, 1.0, 1.0 / 3.0]]))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)


def test_flipped_sample_mirrors_the_principal_point(kitti_root):
    dataset = KittiRawDataset(
        kitti_root, [SplitEntry(DRIVE, f, "l") for f in (1, 2, 3)], train=True, intrinsics="calib"
    )
    plain = KittiRawDataset(kitti_root, dataset.entries, intrinsics="calib")
    batch = collate([dataset[i] for i in range(3)])
    assert 0 < int(batch.flip.sum()) < 3  # seed 0 flips some samples, not all
    reference = collate([plain[i] for i in range(3)])
    assert reference.images.shape[-2:] == (H, W)
    views = prepare_batch(batch, 32, 64)
    for i, flipped in enumerate(batch.flip.tolist()):
        cx_norm = reference.K[i, 0, 2].item()
        want = (1.0 - cx_norm if flipped else cx_norm) * 64
        assert views.K[i, 0, 2].item() == pytest.approx(want)
