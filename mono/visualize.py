"""Pictures of disparities and masks as tensors (used by logging, predict and the notebooks)."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=8)
def _lut(name: str) -> Tensor:
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return torch.tensor(cmap(torch.linspace(0, 1, 256).numpy())[:, :3], dtype=torch.float32)


def colorize(
    values: Tensor,
    cmap: str = "magma",
    vmin: float | None = 0.0,
    percentile: float | None = 95.0,
    vmax: float | None = None,
) -> Tensor:
    """Colour-map a (B, 1, H, W) map per image to (B, 3, H, W) in [0, 1].

    The upper limit is ``vmax`` when given, else the given percentile of each image (Monodepth2
    shows disparities with vmax at the 95th percentile); ``vmin=None`` uses each image's minimum.
    """
    x = values.detach().float().flatten(1)
    if vmax is not None:
        hi = torch.full((x.shape[0],), float(vmax), device=x.device)
    else:
        hi = torch.quantile(x, percentile / 100.0, dim=1) if percentile else x.max(1).values
    lo = x.min(1).values if vmin is None else torch.full_like(hi, vmin)
    norm = ((x - lo[:, None]) / (hi - lo).clamp_min(1e-8)[:, None]).clamp(0, 1)
    idx = (norm * 255).round().long()
    rgb = _lut(cmap).to(values.device)[idx]  # (B, HW, 3)
    b, _, h, w = values.shape
    return rgb.permute(0, 2, 1).reshape(b, 3, h, w)


def label_picture(labels: Tensor, num_labels: int, cmap: str = "tab10") -> Tensor:
    """(B, 1, H, W) integer labels -> (B, 3, H, W) categorical colours."""
    lut = _lut(cmap).to(labels.device)
    idx = (labels.long().clamp(0, num_labels - 1) * 255 // max(num_labels - 1, 1)).squeeze(1)
    return lut[idx].permute(0, 3, 1, 2)


def panels_from_detail(detail) -> dict[str, Tensor]:
    """The standard panels of an :class:`mono.objective.ObjectiveDetail`, each (N, 3, H, W)."""
    s0 = detail.scales[0]
    n_terms = s0.reprojection.shape[1] + (
        0 if detail.identity is None else detail.identity.shape[1]
    )
    return {
        "target": detail.target.clamp(0, 1),
        "disparity": colorize(s0.disp),
        "automask": s0.result.automask.float().expand(-1, 3, -1, -1),
        "winner": label_picture(s0.result.winner, n_terms),
        "warped_source": s0.warped[:, 0].clamp(0, 1),
    }


ERROR_VMAX = 0.5  # abs-rel error shown at full colour in the validation error panel


def validation_panels(image: Tensor, pred_depth: Tensor, gt_depth: Tensor) -> dict[str, Tensor]:
    """What a validation batch looks like next to its ground truth, each (N, 3, H, W) in [0, 1].

    Args:
        image: (N, 3, H, W) input image at the ground truth's size, in [0, 1].
        pred_depth: (N, 1, H, W) predicted depth at the ground truth's size (any scale).
        gt_depth: (N, 1, H, W) ground truth in metres, 0 where there is none.

    Returns:
        ``val_image``; ``val_prediction`` and ``val_ground_truth`` (inverse depth, magma, both
        on the ground truth's range per image); ``val_error``, the absolute relative error of
        the median-scaled prediction (inferno, 0 .. ``ERROR_VMAX``). Pixels without ground
        truth are black in the last two.
    """
    valid = gt_depth > 0
    inv_gt = torch.where(valid, 1 / gt_depth.clamp_min(1e-6), torch.zeros_like(gt_depth))
    scale = torch.ones(gt_depth.shape[0], 1, 1, 1, device=gt_depth.device)
    for i in range(gt_depth.shape[0]):  # per-image median scaling, as the metrics
        if valid[i].any():
            scale[i] = gt_depth[i][valid[i]].median() / pred_depth[i][valid[i]].median()
    scaled = pred_depth * scale
    hi = torch.stack(
        [x[m].max() if m.any() else x.new_tensor(1.0) for x, m in zip(inv_gt, valid, strict=True)]
    ).view(-1, 1, 1, 1)
    error = torch.where(valid, (scaled - gt_depth).abs() / gt_depth.clamp_min(1e-6), 0)
    black = ~valid.expand(-1, 3, -1, -1)
    return {
        "val_image": image.clamp(0, 1),
        "val_prediction": colorize(1 / scaled.clamp_min(1e-6) / hi, vmax=1.0),
        "val_ground_truth": colorize(inv_gt / hi, vmax=1.0).masked_fill(black, 0),
        "val_error": colorize(error, "inferno", vmax=ERROR_VMAX).masked_fill(black, 0),
    }
