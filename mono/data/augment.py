"""Batched, on-device preparation of a :class:`~mono.types.Batch`: resize and colour jitter.

Workers only decode and flip (cheap, numpy); the per-pixel work runs here on the training
device for the whole batch at once. Colour jitter follows torchvision's ``ColorJitter``
(Monodepth2 uses ``ColorJitter(0.2, 0.2, 0.2, 0.1)`` with probability 0.5) but with a fixed
order (brightness, contrast, saturation, hue) and factors drawn in the worker, so that the
same factors are applied to every frame of a sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from kornia.enhance import adjust_hue
from torch import Tensor

from mono.geometry import scale_intrinsics
from mono.types import Batch, Views

IDENTITY_JITTER = (1.0, 1.0, 1.0, 0.0)


def resize_frames(images: Tensor, sizes: Tensor, height: int, width: int) -> Tensor:
    """Resize padded uint8 frames to the network size as floats in [0, 1].

    Samples are grouped by native size; each group's padding is cropped away before an
    antialiased bilinear resize (``align_corners=False``: pixel areas map onto pixel areas,
    which is how normalised intrinsics scale with the resolution).

    Args:
        images: (B, F, 3, H, W) uint8, zero-padded bottom/right.
        sizes: (B, 2) native (h, w) of each sample.
        height, width: output size.

    Returns:
        (B, F, 3, height, width) float32 in [0, 1].
    """
    b, f = images.shape[:2]
    out = images.new_empty((b, f, 3, height, width), dtype=torch.float32)
    for size in torch.unique(sizes, dim=0).tolist():
        h, w = size
        rows = (sizes == sizes.new_tensor(size)).all(dim=1)
        group = images[rows, :, :, :h, :w].flatten(0, 1).float().div_(255.0)
        if (h, w) != (height, width):
            group = F.interpolate(
                group, size=(height, width), mode="bilinear", align_corners=False, antialias=True
            ).clamp_(0.0, 1.0)
        out[rows] = group.unflatten(0, (-1, f))
    return out


def _blend(image: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's blend: ``factor * image + (1 - factor) * other``, clamped to [0, 1]."""
    return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def color_jitter(images: Tensor, factors: Tensor) -> Tensor:
    """Jitter each sample's frames with that sample's factors.

    Args:
        images: (B, F, 3, H, W) float in [0, 1].
        factors: (B, 4) brightness, contrast, saturation (multiplicative, 1 = unchanged) and hue
            shift (fraction of a full turn, 0 = unchanged).

    Returns:
        (B, F, 3, H, W) in [0, 1]; samples whose row is the identity are returned bit-identical.
    """
    identity = factors.new_tensor(IDENTITY_JITTER)
    rows = (factors != identity).any(dim=1)
    out = images.clone()
    if not rows.any():
        return out
    x = images[rows]  # (N, F, 3, H, W)
    b, c, s, hue = (factors[rows, i].view(-1, 1, 1, 1, 1).to(x.dtype) for i in range(4))
    x = (x * b).clamp(0.0, 1.0)
    # Contrast blends with the mean grey level of each frame, as torchvision does per image.
    grey_mean = rgb_to_grayscale(x.flatten(0, 1)).mean(dim=(-3, -2, -1)).view(*x.shape[:2], 1, 1, 1)
    x = _blend(x, grey_mean, c)
    grey = rgb_to_grayscale(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    x = _blend(x, grey, s)
    # kornia's hue is an angle in radians; torchvision's hue factor is a fraction of a turn.
    hue_rad = (hue * 2.0 * math.pi).expand(-1, x.shape[1], -1, -1, -1).reshape(-1)
    shifted = adjust_hue(x.flatten(0, 1), hue_rad).unflatten(0, x.shape[:2]).clamp(0.0, 1.0)
    x = torch.where(hue != 0, shifted, x)  # a zero shift would still round-trip through HSV
    out[rows] = x
    return out


def prepare_batch(batch: Batch, height: int, width: int) -> Views:
    """Network-ready views of a collated batch, on the batch's device.

    Args:
        batch: images (B, F, 3, H, W) uint8 at native size, with normalised K.
        height, width: network input size.

    Returns:
        :class:`~mono.types.Views` with ``color`` / ``color_aug`` (B, F, 3, height, width) in
        [0, 1], pixel ``K`` at (height, width); ``T_stereo``, ``depth_gt``, ``sizes`` and
        ``flip`` passed through.
    """
    color = resize_frames(batch.images, batch.sizes, height, width)
    K = scale_intrinsics(batch.K.float(), height, width)
    return Views(
        color=color,
        color_aug=color_jitter(color, batch.jitter),
        K=K,
        T_stereo=batch.T_stereo,
        sizes=batch.sizes,
        depth_gt=batch.depth_gt,
        flip=batch.flip,
    )
