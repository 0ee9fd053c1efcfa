"""Depth losses against ground truth, for supervised and hybrid (semi-supervised) training.

Every loss takes ``(pred, gt, valid)``, all (B, 1, H, W) at one size, with ``valid`` a bool mask
of the ground-truth pixels to use. Each term is averaged over the valid pixels of an image and
then over the images that have any, so dense and sparse (LiDAR) samples weigh the same. Values
at invalid pixels change neither the loss nor any gradient (they are replaced before any
arithmetic), and a batch without valid pixels gives 0, never NaN. Depths must be positive at
valid pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mono.losses.photometric import _box3, ssim


def _check(name: str, pred: Tensor, gt: Tensor, valid: Tensor) -> None:
    if pred.ndim != 4 or pred.shape[1] != 1 or pred.shape != gt.shape or pred.shape != valid.shape:
        raise ValueError(
            f"{name}: pred, gt and valid must all be (B, 1, H, W), got "
            f"{tuple(pred.shape)}, {tuple(gt.shape)}, {tuple(valid.shape)}"
        )
    if valid.dtype != torch.bool:
        raise ValueError(f"{name}: valid must be a bool mask, got {valid.dtype}")


def _image_means(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) mean of ``values`` over ``mask`` per image, and (B,) whether the mask has any pixel."""
    count = mask.sum(dim=(1, 2, 3))
    total = torch.where(mask, values, torch.zeros_like(values)).sum(dim=(1, 2, 3))
    return total / count.clamp(min=1), count > 0


def _batch_mean(per_image: Tensor, present: Tensor) -> Tensor:
    """Mean over the images that are present; 0 (still in the graph) when none is."""
    weights = present.to(per_image.dtype)
    return (per_image * weights).sum() / weights.sum().clamp(min=1)


def _filled(pred: Tensor, gt: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """``pred`` and ``gt`` with every invalid pixel set to 1 before any arithmetic: masking a
    result afterwards is not enough, since an inf or NaN there (log 0, NaN-coded ground truth)
    would still turn the zero gradient of the mask into NaN on the way back."""
    one = torch.ones_like(pred)
    return torch.where(valid, pred, one), torch.where(valid, gt, one)


def _log_error(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """``log pred - log gt`` at valid pixels, 0 elsewhere."""
    pred, gt = _filled(pred, gt, valid)
    return torch.log(pred) - torch.log(gt)


def silog_loss(pred: Tensor, gt: Tensor, valid: Tensor, lam: float = 0.5) -> Tensor:
    """Scale-invariant log loss (Eigen et al., NeurIPS 2014, Eq. 4).

    With ``d = log pred - log gt`` over the n valid pixels of an image:
    ``1/n sum d^2 - lam/n^2 (sum d)^2``; ``lam = 0`` is the mean squared log error, ``lam = 1``
    is invariant to the scale of ``pred`` (Eigen et al. train with 0.5).

    Args:
        pred: (B, 1, H, W) predicted depth, > 0 where valid.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.
        lam: weight of the scale-invariance term in [0, 1].

    Returns:
        Scalar loss, averaged over the images with valid pixels.
    """
    _check("silog_loss", pred, gt, valid)
    d = _log_error(pred, gt, valid)
    mean_sq, present = _image_means(d * d, valid)
    mean, _ = _image_means(d, valid)
    return _batch_mean(mean_sq - lam * mean * mean, present)


def kitti_silog_loss(
    pred: Tensor, gt: Tensor, valid: Tensor, lam: float = 0.85, scale: float = 10.0
) -> Tensor:
    """The square-rooted SILog used by the KITTI depth benchmark and BTS (Lee et al. 2019):
    ``scale * sqrt(mean d^2 - lam * mean(d)^2)`` per image, ``d = log pred - log gt``.

    Args:
        pred: (B, 1, H, W) predicted depth, > 0 where valid.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.
        lam: variance focus in [0, 1] (BTS: 0.85).
        scale: output factor (BTS: 10).

    Returns:
        Scalar loss, averaged over the images with valid pixels. The square root is taken as 0,
        with zero gradient, where its argument is not positive (a perfect prediction), because
        the derivative of sqrt is infinite at 0.
    """
    _check("kitti_silog_loss", pred, gt, valid)
    d = _log_error(pred, gt, valid)
    mean_sq, present = _image_means(d * d, valid)
    mean, _ = _image_means(d, valid)
    radicand = mean_sq - lam * mean * mean
    positive = radicand > 0
    root = torch.sqrt(torch.where(positive, radicand, torch.ones_like(radicand)))
    return _batch_mean(scale * torch.where(positive, root, torch.zeros_like(root)), present)


def l1_depth_loss(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Mean absolute depth error over valid pixels.

    Args:
        pred: (B, 1, H, W) predicted depth.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.

    Returns:
        Scalar loss, averaged over the images with valid pixels.
    """
    _check("l1_depth_loss", pred, gt, valid)
    pred, gt = _filled(pred, gt, valid)
    return _batch_mean(*_image_means((pred - gt).abs(), valid))


def l2_depth_loss(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Mean squared depth error over valid pixels.

    Args:
        pred: (B, 1, H, W) predicted depth.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.

    Returns:
        Scalar loss, averaged over the images with valid pixels.
    """
    _check("l2_depth_loss", pred, gt, valid)
    pred, gt = _filled(pred, gt, valid)
    return _batch_mean(*_image_means((pred - gt) ** 2, valid))


def depth_ssim_loss(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """SSIM dissimilarity (:func:`mono.losses.ssim`) between depth maps.

    Invalid pixels are set to 1 in both maps, and the dissimilarity is averaged only over pixels
    whose whole 3x3 window (after the reflection padding) is valid, so invalid pixels never
    enter a window that counts. Sparse LiDAR ground truth has few such windows: this term is
    meant for dense ground truth. SSIM's constants assume values near [0, 1]; on metric depth
    they are negligible and the term is close to scale invariant.

    Args:
        pred: (B, 1, H, W) predicted depth, H, W >= 2.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.

    Returns:
        Scalar loss in [0, 1], averaged over the images with any fully valid window.
    """
    _check("depth_ssim_loss", pred, gt, valid)
    dissimilarity = ssim(*_filled(pred, gt, valid))
    # A window mean of exactly 1 means all nine pixels are valid; 8.5 / 9 leaves rounding room.
    full_window = _box3(valid.to(pred.dtype)) > 8.5 / 9
    return _batch_mean(*_image_means(dissimilarity, full_window))


def gradient_matching_loss(pred: Tensor, gt: Tensor, valid: Tensor, num_scales: int = 4) -> Tensor:
    """Multi-scale gradient matching of the log-depth error (Li & Snavely, CVPR 2018, Eq. 4;
    the same idea as Eigen & Fergus 2015).

    With ``R = log pred - log gt``, each scale k subsamples R and ``valid`` with stride
    ``2**k`` and adds ``mean |R(x+1) - R(x)|`` over horizontally neighbouring valid pairs plus
    the same vertically; the scales are summed as in the paper. ``pred = c * gt`` gives 0 for
    any ``c > 0``.

    Args:
        pred: (B, 1, H, W) predicted depth, > 0 where valid.
        gt: (B, 1, H, W) ground-truth depth.
        valid: (B, 1, H, W) bool mask of usable ground truth.
        num_scales: number of scales (>= 1).

    Returns:
        Scalar loss; a scale or direction without valid pairs contributes 0.
    """
    _check("gradient_matching_loss", pred, gt, valid)
    if num_scales < 1:
        raise ValueError(f"gradient_matching_loss: num_scales must be >= 1, got {num_scales}")
    error = _log_error(pred, gt, valid)
    total = pred.new_zeros(())
    for k in range(num_scales):
        r = error[..., :: 2**k, :: 2**k]
        v = valid[..., :: 2**k, :: 2**k]
        dx = (r[..., :, 1:] - r[..., :, :-1]).abs()
        dy = (r[..., 1:, :] - r[..., :-1, :]).abs()
        total = total + _batch_mean(*_image_means(dx, v[..., :, 1:] & v[..., :, :-1]))
        total = total + _batch_mean(*_image_means(dy, v[..., 1:, :] & v[..., :-1, :]))
    return total


SupervisedLoss = Callable[..., Tensor]

#: Supervised terms by config name; each is called as ``fn(pred, gt, valid, **options)``.
SUPERVISED_LOSSES: dict[str, SupervisedLoss] = {
    "silog": silog_loss,
    "kitti_silog": kitti_silog_loss,
    "l1": l1_depth_loss,
    "l2": l2_depth_loss,
    "ssim": depth_ssim_loss,
    "gradient": gradient_matching_loss,
}


def get_supervised_loss(name: str) -> SupervisedLoss:
    """Look up a term of :data:`SUPERVISED_LOSSES`, failing with the list of known names."""
    try:
        return SUPERVISED_LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(SUPERVISED_LOSSES))
        raise ValueError(f"unknown supervised loss {name!r}; known: {known}") from None
