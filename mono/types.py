"""Typed containers that flow between the layers of mono.

Conventions, stated once for the whole package:

* Images are RGB in [0, 1] (float) or [0, 255] (uint8), shaped (B, 3, H, W).
* Frames of a sample are ordered as the configured ``frame_ids`` (default ``("0", "-1", "1")``,
  plus ``"s"`` for the stereo partner); index 0 along the frame axis is always the target.
* ``K`` in a :class:`Batch` is *normalised*: row 0 divided by the image width, row 1 by the
  height (Monodepth2's convention), so it is independent of the resolution. Pixel intrinsics
  for a size (h, w) are ``K_norm`` with row 0 times ``w`` and row 1 times ``h``.
* Pixel coordinates put the centre of the top-left pixel at (0, 0) and the bottom-right at
  (w - 1, h - 1); every ``grid_sample`` uses ``align_corners=True`` to match.
* ``T_src_tgt`` is a (B, 4, 4) rigid transform that maps 3-D points expressed in the target
  camera into the source camera: ``X_src = T_src_tgt @ X_tgt``.
* Depth is metric-like (metres, or the network's up-to-scale units); 0 marks invalid ground truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


def _move(value, device, non_blocking: bool):
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, list):
        return [_move(v, device, non_blocking) for v in value]
    if isinstance(value, dict):
        return {k: _move(v, device, non_blocking) for k, v in value.items()}
    return value


class _Movable:
    """Mixin: ``.to(device)`` returns a copy with every tensor field moved."""

    def to(self, device, non_blocking: bool = False):
        changes = {
            f.name: _move(getattr(self, f.name), device, non_blocking)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def pin_memory(self):
        """Page-locked copy (the DataLoader calls this with ``pin_memory=True``)."""
        changes = {
            f.name: v.pin_memory()
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(v := getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass
class Batch(_Movable):
    """A collated batch as the DataLoader yields it, still at the images' native size.

    Resizing to the network size and colour jitter happen later, on the training device
    (see :func:`mono.data.augment.prepare_batch`), so workers only decode files.

    Attributes:
        images: (B, F, 3, H, W) uint8, frames in ``frame_ids`` order (target first), already
            horizontally flipped where ``flip`` is set; zero-padded at the bottom/right to the
            largest native size in the batch.
        sizes: (B, 2) int64, native (height, width) of each sample before padding.
        K: (B, 3, 3) float32 normalised intrinsics of the target camera (cx mirrored if flipped).
        T_stereo: (B, 4, 4) float32 ``T_src_tgt`` of the stereo partner ``"s"``
            (identity when the batch has no stereo frame).
        flip: (B,) bool, whether the sample was mirrored.
        jitter: (B, 4) float32 colour-jitter factors (brightness, contrast, saturation, hue);
            the identity row (1, 1, 1, 0) means "no jitter". Drawn in the worker from
            (seed, epoch, index) so runs and resumes repeat exactly.
        index: (B,) int64 dataset index of each sample.
        depth_gt: optional (B, 1, Hg, Wg) float32 ground-truth depth in metres, 0 = invalid
            (projected LiDAR or dense depth), flipped with the images, zero-padded.
    """

    images: Tensor
    sizes: Tensor
    K: Tensor
    T_stereo: Tensor
    flip: Tensor
    jitter: Tensor
    index: Tensor
    depth_gt: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Views(_Movable):
    """A batch prepared on the device at the network's input size.

    Attributes:
        color: (B, F, 3, h, w) float in [0, 1], not colour-jittered: what the losses compare.
        color_aug: (B, F, 3, h, w) float in [0, 1], colour-jittered: what the networks see.
        K: (B, 3, 3) pixel intrinsics at (h, w).
        T_stereo: (B, 4, 4) ``T_src_tgt`` of the stereo partner.
        depth_gt: optional (B, 1, Hg, Wg) ground truth at its native size, 0 = invalid.
        sizes: (B, 2) native (height, width) of each sample (to crop ``depth_gt`` padding).
        flip: optional (B,) bool, samples mirrored horizontally (a learned camera mirrors its
            principal point for them, as ``K`` already is).
    """

    color: Tensor
    color_aug: Tensor
    K: Tensor
    T_stereo: Tensor
    sizes: Tensor
    depth_gt: Tensor | None = None
    flip: Tensor | None = None


@dataclass
class DepthOutput(_Movable):
    """What the depth network predicts.

    Attributes:
        disps: sigmoid disparities in [0, 1], finest first: ``disps[s]`` is
            (B, 1, h / 2**s, w / 2**s).
    """

    disps: list[Tensor]


def identity_pose(batch_size: int, device=None, dtype=torch.float32) -> Tensor:
    """(B, 4, 4) identity transforms."""
    return torch.eye(4, device=device, dtype=dtype).expand(batch_size, 4, 4).clone()
