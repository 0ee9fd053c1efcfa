"""The sample contract every dataset layout fulfils, and what all of them share.

A layout module (``kitti.py`` for KITTI raw, ``kitti_odom.py``, ``video.py`` for folders of
frames and video files) owns its files: it subclasses :class:`SampleDataset` and implements
:meth:`~SampleDataset.read` (the un-augmented :class:`Frames` of one index),
:meth:`~SampleDataset.check_files` and ``__len__``. The base class draws the augmentation from
(seed, epoch, index), mirrors what a flip mirrors and returns a :class:`Sample`; :func:`collate`
turns samples into a :class:`~mono.types.Batch`, which :func:`mono.data.augment.prepare_batch`
resizes and jitters on the training device. So workers only decode files, whatever the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mono.data.sampler import derive_seed
from mono.types import Batch

IDENTITY_JITTER = np.array([1.0, 1.0, 1.0, 0.0], dtype=np.float32)
# Monodepth2's colour augmentation: ColorJitter(0.2, 0.2, 0.2, 0.1) applied half of the time.
JITTER_LOW = np.array([0.8, 0.8, 0.8, -0.1], dtype=np.float32)
JITTER_HIGH = np.array([1.2, 1.2, 1.2, 0.1], dtype=np.float32)
# x -> -x: a horizontal flip of the image, as a transform of camera coordinates.
_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)


class GroundTruth(NamedTuple):
    """The ground truth a split loads and why: ``source`` none|lidar|dense, ``reason`` e.g.
    ``"44 of 44 samples"`` or ``"calib_velo_to_cam.txt missing in <date folder>"``."""

    source: str
    reason: str

    def describe(self, stage: str) -> str:
        return f"{stage} ground truth: {self.source} ({self.reason})"


@dataclass
class Frames:
    """What a layout reads for one sample, before augmentation.

    Attributes:
        images: (F, H, W, 3) uint8 RGB in ``frame_ids`` order (target first), all one size.
        K: (3, 3) float32 intrinsics of the target camera normalised by (W, H) (see
            :mod:`mono.types`).
        T_stereo: optional (4, 4) float32 ``T_src_tgt`` of the stereo partner ``"s"``; None for
            a monocular layout (the batch then carries the identity).
        depth_gt: optional (H, W) float32 ground-truth depth in metres, 0 = invalid.
    """

    images: np.ndarray
    K: np.ndarray
    T_stereo: np.ndarray | None = None
    depth_gt: np.ndarray | None = None


@dataclass
class Sample:
    """One augmented sample as a dataset returns it (the unit :func:`collate` stacks).

    Attributes:
        images: (F, 3, H, W) uint8, mirrored where ``flip`` is set.
        K: (3, 3) float32 normalised intrinsics (principal point mirrored with the image).
        T_stereo: (4, 4) float32 ``T_src_tgt`` of ``"s"`` (mirrored), identity when monocular.
        flip: whether the sample was mirrored.
        jitter: (4,) float32 colour-jitter factors (brightness, contrast, saturation, hue).
        index: dataset index.
        depth_gt: optional (1, H, W) float32 metres, mirrored with the images.
    """

    images: Tensor
    K: Tensor
    T_stereo: Tensor
    flip: bool
    jitter: Tensor
    index: int
    depth_gt: Tensor | None = None


def draw_augmentation(seed: int, epoch: int, index: int) -> tuple[bool, np.ndarray]:
    """(flip, jitter factors (4,)) of one training sample: a pure function of its arguments.

    A private generator (not the global RNG) makes the draw independent of worker count, order
    and of any other randomness, so a resumed run repeats exactly. Flip with p = 0.5; jitter
    with p = 0.5, factors uniform in [JITTER_LOW, JITTER_HIGH].
    """
    generator = torch.Generator().manual_seed(derive_seed(seed, epoch, index))
    u = torch.rand(6, generator=generator, dtype=torch.float64).numpy()
    flip = bool(u[0] < 0.5)
    if u[1] >= 0.5:
        return flip, IDENTITY_JITTER.copy()
    jitter = JITTER_LOW + (JITTER_HIGH - JITTER_LOW) * u[2:]
    return flip, jitter.astype(np.float32)


def augment(frames: Frames, flip: bool, jitter: np.ndarray, index: int) -> Sample:
    """The :class:`Sample` of ``frames``, mirrored when ``flip`` is set."""
    images = frames.images.transpose(0, 3, 1, 2)  # (F, 3, H, W)
    depth = frames.depth_gt
    K = np.array(frames.K, dtype=np.float32)
    T = np.eye(4, dtype=np.float32) if frames.T_stereo is None else frames.T_stereo
    T = np.asarray(T, dtype=np.float32)
    if flip:
        images = images[..., ::-1]
        depth = None if depth is None else depth[:, ::-1]
        # Mirror of the principal point in continuous image coordinates (x -> w - x), the
        # convention in which normalised K scales with the resolution. With pixel centres at
        # integers the exact mirror is w - 1 - x: this is 1 pixel off, at any size.
        K[0, 2] = 1.0 - K[0, 2]
        T = _MIRROR @ T @ _MIRROR  # the mirrored rig: a baseline to the left becomes the right
    sample = Sample(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        K=torch.from_numpy(K),
        T_stereo=torch.from_numpy(np.ascontiguousarray(T)),
        flip=flip,
        jitter=torch.from_numpy(np.asarray(jitter, dtype=np.float32)),
        index=index,
    )
    if depth is not None:
        sample.depth_gt = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
    return sample


class SampleDataset(Dataset):
    """Base of every layout's dataset: the augmentation draw and the :class:`Sample` contract.

    Args:
        frame_ids: ``"0"`` first, then integer offsets and/or ``"s"`` (already validated).
        train: draw a horizontal flip (p = 0.5) and colour jitter (p = 0.5) per sample.
        seed: base seed of the augmentation; a sample's draw depends on (seed, epoch, index).
    """

    def __init__(self, frame_ids: tuple[str, ...], train: bool, seed: int) -> None:
        self.frame_ids = tuple(frame_ids)
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, index: int) -> Frames:
        """The un-augmented frames, intrinsics and optional stereo transform / ground truth."""
        raise NotImplementedError

    def check_files(self) -> None:
        """Raise a clear error for anything that would fail during training (files, sizes)."""
        raise NotImplementedError

    @property
    def ground_truth(self) -> GroundTruth:
        """The ground truth this split loads and why; layouts without depth load none."""
        return GroundTruth("none", f"the {type(self).__name__} layout has no ground truth")

    @property
    def depth_source(self) -> str:
        return self.ground_truth.source

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer indices (a sampler may pass ``(epoch, index)`` instead)."""
        self.epoch = epoch

    def draw_augmentation(self, index: int, epoch: int) -> tuple[bool, np.ndarray]:
        """(flip, jitter) of sample ``index`` in ``epoch``; (False, identity) unless training."""
        if not self.train:
            return False, IDENTITY_JITTER.copy()
        return draw_augmentation(self.seed, epoch, index)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        """One sample; ``key`` is an index or ``(epoch, index)``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        flip, jitter = self.draw_augmentation(index, epoch)
        return augment(self.read(index), flip, jitter, index)


def _pad_stack(tensors: list[Tensor]) -> Tensor:
    """Stack (..., H, W) tensors, zero-padding each at the bottom/right to the largest size."""
    h = max(t.shape[-2] for t in tensors)
    w = max(t.shape[-1] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), *tensors[0].shape[:-2], h, w))
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-2], : t.shape[-1]] = t
    return out


def collate(samples: list[Sample]) -> Batch:
    """Collate :class:`Sample` s of any layout into a :class:`~mono.types.Batch`.

    Native sizes may differ (KITTI dates by a few pixels), so images (and ground truth) are
    zero-padded at the bottom/right to the largest in the batch; ``sizes`` keeps each (h, w).

    Raises:
        ValueError: only some samples carry ground truth.
    """
    with_depth = [s.depth_gt is not None for s in samples]
    if any(with_depth) and not all(with_depth):
        raise ValueError("collate: some samples have depth_gt and others do not")
    images = [s.images for s in samples]
    return Batch(
        images=_pad_stack(images),
        sizes=torch.tensor([list(t.shape[-2:]) for t in images], dtype=torch.int64),
        K=torch.stack([s.K for s in samples]),
        T_stereo=torch.stack([s.T_stereo for s in samples]),
        flip=torch.tensor([bool(s.flip) for s in samples]),
        jitter=torch.stack([s.jitter for s in samples]),
        index=torch.tensor([int(s.index) for s in samples], dtype=torch.int64),
        depth_gt=_pad_stack([s.depth_gt for s in samples]) if all(with_depth) else None,
    )
