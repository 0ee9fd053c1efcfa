"""Depth metrics, median scaling and the Eigen crop: one implementation for training and evaluation.

The error measures and the order of operations (mask, fixed scale, median scale, clamp) follow
Monodepth2's ``evaluate_depth.py`` (Godard et al., ICCV 2019), which follows Eigen et al.
(NeurIPS 2014); ``silog`` is the KITTI depth-prediction benchmark's scale-invariant log error
(Uhrig et al., 3DV 2017). Everything is computed with torch, so validation runs on the training
device; numpy inputs are accepted and give python floats back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0

# Garg et al. (ECCV 2016) crop used by the Eigen-split evaluation, as fractions of
# (height, height, width, width): rows [top, bottom), columns [left, right).
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)

CROPS = ("garg", "none")
# Which ground-truth pixels count: "range" keeps min_depth < gt < max_depth (Eigen split),
# "positive" keeps gt > 0 (Monodepth2's protocol for the Eigen-benchmark ground truth).
VALID_RULES = ("range", "positive")

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "silog")


def crop_mask(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean (height, width) mask of the Garg/Eigen crop.

    Bounds are truncated to integers exactly as Monodepth2 does (``astype(np.int32)``), e.g.
    rows 153:371 and columns 44:1197 for a 375 x 1242 KITTI image.
    """
    top, bottom, left, right = GARG_CROP
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[int(top * height) : int(bottom * height), int(left * width) : int(right * width)] = True
    return mask


def _check_option(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")


def _median(x: Tensor) -> Tensor:
    """numpy's median (mean of the two middle values); ``torch.median`` returns the lower one."""
    n = x.numel()
    if n == 0:
        return torch.full((), math.nan, dtype=x.dtype, device=x.device)
    s = torch.sort(x.flatten()).values
    return 0.5 * (s[(n - 1) // 2] + s[n // 2])


def _to_tensor(x) -> Tensor:
    t = torch.as_tensor(x)
    # float64 at least for numpy input (the offline path); float32 or wider on device.
    dtype = (
        torch.float64 if isinstance(x, np.ndarray) else torch.promote_types(t.dtype, torch.float32)
    )
    return t.to(dtype)


def _depth_errors(gt: Tensor, pred: Tensor) -> dict[str, Tensor]:
    thresh = torch.maximum(gt / pred, pred / gt)
    log_diff = torch.log(pred) - torch.log(gt)
    silog_var = (log_diff**2).mean() - log_diff.mean() ** 2
    return {
        "abs_rel": ((gt - pred).abs() / gt).mean(),
        "sq_rel": ((gt - pred) ** 2 / gt).mean(),
        "rmse": ((gt - pred) ** 2).mean().sqrt(),
        "rmse_log": (log_diff**2).mean().sqrt(),
        "a1": (thresh < 1.25).to(gt.dtype).mean(),
        "a2": (thresh < 1.25**2).to(gt.dtype).mean(),
        "a3": (thresh < 1.25**3).to(gt.dtype).mean(),
        "silog": 100.0 * silog_var.clamp(min=0).sqrt(),
    }


def compute_depth_errors(gt, pred) -> dict:
    """Eigen et al.'s depth errors over matching valid pixels, plus the KITTI benchmark's SILog.

    abs_rel = mean(|gt - pred| / gt), sq_rel = mean((gt - pred)^2 / gt),
    rmse = sqrt(mean((gt - pred)^2)), rmse_log = sqrt(mean((log gt - log pred)^2)),
    a_k = fraction of pixels with max(gt / pred, pred / gt) < 1.25^k (k = 1, 2, 3),
    silog = 100 * sqrt(mean(d^2) - mean(d)^2) with d = log pred - log gt.

    Args:
        gt: (N,) positive ground-truth depths, torch tensor or numpy array.
        pred: (N,) positive predicted depths, same type as ``gt``.

    Returns:
        ``METRIC_NAMES`` -> 0-d tensors (torch input) or python floats (numpy input);
        NaN everywhere when N = 0.
    """
    as_numpy = isinstance(gt, np.ndarray)
    errors = _depth_errors(_to_tensor(gt).flatten(), _to_tensor(pred).flatten())
    return {k: float(v) for k, v in errors.items()} if as_numpy else errors


def evaluate_depth_map(
    pred_depth,
    gt_depth,
    crop: str = "garg",
    median_scaling: bool = True,
    fixed_scale: float = 1.0,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    valid: str = "range",
) -> tuple[dict, float | Tensor]:
    """Metrics of one depth map, in Monodepth2's order: mask, fixed scale, median scale, clamp.

    Args:
        pred_depth: (H, W) predicted depth at the ground truth's size (tensor or array).
        gt_depth: (H, W) ground-truth depth, 0 = no measurement.
        crop: "garg" (Eigen crop) or "none".
        median_scaling: multiply the prediction by ``median(gt) / median(pred)`` over valid
            pixels (monocular models have no metric scale).
        fixed_scale: factor applied before median scaling (``STEREO_SCALE_FACTOR`` for stereo
            models trained with Monodepth2's 0.1 baseline).
        min_depth, max_depth: valid ground-truth range (for ``valid="range"``) and clamp range
            of the scaled prediction.
        valid: "range" (min_depth < gt < max_depth) or "positive" (gt > 0).

    Returns:
        ``(metrics, ratio)``: metrics as :func:`compute_depth_errors` (NaN when no pixel is
        valid); ratio is the median-scaling factor, 1 without median scaling.
    """
    _check_option("crop", crop, CROPS)
    _check_option("valid", valid, VALID_RULES)
    as_numpy = isinstance(gt_depth, np.ndarray)
    gt = _to_tensor(gt_depth)
    pred = _to_tensor(pred_depth).to(gt.device)
    if gt.shape != pred.shape or gt.dim() != 2:
        raise ValueError(
            f"evaluate_depth_map: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must be "
            "the same (H, W)"
        )
    mask = (gt > min_depth) & (gt < max_depth) if valid == "range" else gt > 0
    if crop == "garg":
        mask &= crop_mask(*gt.shape, device=gt.device)
    gt, pred = gt[mask], pred[mask].to(gt.dtype) * fixed_scale
    ratio = torch.ones((), dtype=gt.dtype, device=gt.device)
    if median_scaling:
        ratio = _median(gt) / _median(pred)
        pred = pred * ratio
    pred = pred.clamp(min_depth, max_depth)
    errors = _depth_errors(gt, pred)
    if as_numpy:
        return {k: float(v) for k, v in errors.items()}, float(ratio)
    return errors, ratio


def batch_depth_metrics(
    pred_depth: Tensor,
    gt_depth: Tensor,
    sizes: Tensor | None = None,
    crop: str = "garg",
    median_scaling: bool = True,
    fixed_scale: float = 1.0,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    valid: str = "range",
) -> dict[str, Tensor]:
    """Per-image metrics of a batch, for validation during training.

    Each prediction is upsampled bilinearly (``align_corners=False``, as Monodepth2's
    training-time depth metrics do) to its ground truth's native size, then scored with
    :func:`evaluate_depth_map`. Note the offline evaluation resizes *disparity*, not depth.

    Args:
        pred_depth: (B, 1, h, w) predicted depth.
        gt_depth: (B, 1, Hg, Wg) ground truth, 0 = invalid, zero-padded at the bottom/right.
        sizes: (B, 2) native (height, width) of each ground truth inside the padding;
            None means the full (Hg, Wg).
        crop, median_scaling, fixed_scale, min_depth, max_depth, valid: as
            :func:`evaluate_depth_map`.

    Returns:
        ``METRIC_NAMES`` plus "ratio" -> (B,) tensors. An image without any valid ground-truth
        pixel gets NaN in every entry: aggregate with ``nanmean`` or drop ``isnan`` rows.
    """
    if pred_depth.dim() != 4 or gt_depth.dim() != 4 or pred_depth.shape[0] != gt_depth.shape[0]:
        raise ValueError(
            f"batch_depth_metrics: expected pred (B, 1, h, w) and gt (B, 1, H, W), got "
            f"{tuple(pred_depth.shape)} and {tuple(gt_depth.shape)}"
        )
    rows = []
    for i in range(gt_depth.shape[0]):
        h, w = gt_depth.shape[-2:] if sizes is None else (int(s) for s in sizes[i])
        gt = gt_depth[i, 0, :h, :w]
        pred = F.interpolate(
            pred_depth[i : i + 1].to(torch.promote_types(pred_depth.dtype, torch.float32)),
            size=(h, w),
            mode="bilinear",
            align_corners=False,
        )[0, 0]
        errors, ratio = evaluate_depth_map(
            pred, gt, crop, median_scaling, fixed_scale, min_depth, max_depth, valid
        )
        rows.append({**errors, "ratio": ratio})
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def constant_depth_baseline(
    gt_depth: Tensor,
    sizes: Tensor | None = None,
    crop: str = "garg",
    median_scaling: bool = True,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    valid: str = "range",
) -> dict[str, Tensor]:
    """Metrics of the median-scaled constant-depth prediction (the GT median everywhere).

    The floor any depth model must beat: a constant has no scale of its own, so it is always
    median-scaled; ``median_scaling`` is accepted (to share keyword arguments with
    :func:`batch_depth_metrics`) and ignored.

    Args:
        gt_depth: (B, 1, Hg, Wg) ground truth as in :func:`batch_depth_metrics`.
        sizes, crop, min_depth, max_depth, valid: as :func:`batch_depth_metrics`.

    Returns:
        Same keys and NaN convention as :func:`batch_depth_metrics`.
    """
    del median_scaling
    ones = torch.ones(gt_depth.shape[0], 1, 1, 1, dtype=torch.float32, device=gt_depth.device)
    return batch_depth_metrics(ones, gt_depth, sizes, crop, True, 1.0, min_depth, max_depth, valid)


def resize_into_padding(depth: Tensor, sizes: Tensor, padded: tuple[int, int]) -> Tensor:
    """Predictions laid out like zero-padded native-size ground truth.

    Args:
        depth: (B, 1, h, w) predicted depth at the network size.
        sizes: (B, 2) native (height, width) of each sample's ground truth.
        padded: (Hg, Wg) size of the padded ground-truth batch.

    Returns:
        (B, 1, Hg, Wg): each sample resized bilinearly (``align_corners=False``) to its native
        size at the top left, 1 in the padding (masked out by the zero ground truth there).
    """
    out = []
    for i, (h, w) in enumerate(sizes.tolist()):
        x = F.interpolate(depth[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)
        out.append(F.pad(x, (0, padded[1] - w, 0, padded[0] - h), value=1.0))
    return torch.cat(out)


def scored_depth_metrics(
    depth: Tensor,
    gt: Tensor,
    sizes: Tensor,
    crop: str = "garg",
    median_scaling: bool = True,
    max_depth: float = MAX_DEPTH,
) -> dict[str, Tensor]:
    """Per-image metrics of a batch's prediction and of the constant-depth baseline, as
    validation and ``mono test`` log them.

    Images without valid ground truth are left out. A prediction that is not finite everywhere
    scores inf, never "no value": a checkpoint callback that monitors the metric then still
    sees it, and never calls that model the best.

    Args:
        depth: (B, 1, h, w) predicted depth (already in metres for stereo scaling).
        gt, sizes, crop, median_scaling, max_depth: as :func:`batch_depth_metrics`.

    Returns:
        ``{name: (N,) values}`` for every metric of the model and ``baseline_abs_rel``,
        ``baseline_rmse``, ``baseline_a1`` of the constant depth; N may be 0.
    """
    kwargs = dict(crop=crop, median_scaling=median_scaling, max_depth=max_depth)
    model = batch_depth_metrics(depth, gt, sizes, **kwargs)
    base = constant_depth_baseline(gt, sizes, **kwargs)
    scored = ~torch.isnan(base["abs_rel"])  # images with valid ground truth
    broken = ~torch.isfinite(depth.flatten(1)).all(dim=1) & scored
    out = {}
    for name, values in model.items():
        values = values.masked_fill(broken, math.inf)
        out[name] = values[~torch.isnan(values)]
    for name in ("abs_rel", "rmse", "a1"):
        out[f"baseline_{name}"] = base[name][~torch.isnan(base[name])]
    return out
