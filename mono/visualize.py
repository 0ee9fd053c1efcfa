"""Pictures of disparities and masks as tensors (used by logging, predict and the notebooks)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
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


# The winner of the per-pixel minimum, one palette for the logged panels and the notebooks:
# identity (masked) candidates in greys, warped candidates in colours.
IDENTITY_COLOURS = {"black": (0.0, 0.0, 0.0), "grey": (0.45,) * 3, "light grey": (0.75,) * 3}
WARPED_COLOURS = {
    "blue": (0.12, 0.47, 0.71),
    "orange": (1.0, 0.5, 0.05),
    "green": (0.17, 0.63, 0.17),
    "purple": (0.58, 0.4, 0.74),
}
LEGEND_ROW = 12  # pixels per legend entry under a logged winner panel


def winner_term_names(source_ids: list[str], num_identity: int, averaged: bool) -> list[str]:
    """Names of the per-pixel minimum's candidates in winner-index order (identity first)."""
    ids = ["mean"] if averaged else list(source_ids)
    return [f"identity {f}" for f in ids][:num_identity] + [f"warped {f}" for f in ids]


def winner_colours(term_names: list[str]) -> list[tuple[str, tuple[float, float, float]]]:
    """(colour name, rgb) of each candidate of :func:`winner_term_names`."""
    n_identity = sum(name.startswith("identity") for name in term_names)
    greys, colours = list(IDENTITY_COLOURS.items()), list(WARPED_COLOURS.items())
    if n_identity > len(greys) or len(term_names) - n_identity > len(colours):
        raise ValueError(f"winner picture: {len(term_names)} candidates, too many to colour")
    return greys[:n_identity] + colours[: len(term_names) - n_identity]


def winner_picture(winner: Tensor, term_names: list[str]) -> tuple[str, Tensor]:
    """(legend, (B, 3, H, W) picture) of a (B, 1, H, W) winner index map."""
    colours = winner_colours(term_names)
    lut = torch.tensor([rgb for _, rgb in colours], device=winner.device)
    picture = lut[winner[:, 0].long()].permute(0, 3, 1, 2)
    legend = ", ".join(f"{c}={n}" for (c, _), n in zip(colours, term_names, strict=True))
    return legend, picture


def with_legend(picture: Tensor, term_names: list[str]) -> Tensor:
    """(B, 3, H, W) winner picture -> (B, 3, H + LEGEND_ROW * n, W) with a swatch and the name
    of each candidate written beneath (TensorBoard and wandb show images without captions)."""
    from PIL import Image, ImageDraw

    colours = winner_colours(term_names)
    strip = Image.new("RGB", (picture.shape[-1], LEGEND_ROW * len(colours)), "white")
    draw = ImageDraw.Draw(strip)
    for row, ((_, rgb), name) in enumerate(zip(colours, term_names, strict=True)):
        top = row * LEGEND_ROW
        fill = tuple(round(255 * c) for c in rgb)
        draw.rectangle([1, top + 1, LEGEND_ROW - 2, top + LEGEND_ROW - 2], fill=fill)
        draw.text((LEGEND_ROW + 2, top), name, fill="black")
    legend = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255
    legend = legend.to(picture.device).expand(picture.shape[0], -1, -1, -1)
    return torch.cat([picture, legend], dim=2)


def panels_from_detail(detail) -> dict[str, Tensor]:
    """The standard panels of an :class:`mono.objective.ObjectiveDetail`, each (N, 3, h, w):
    the target, the disparity of every decoder scale, the auto-mask, the winner of the
    per-pixel minimum with its legend, and the first source warped into the target view."""
    s0 = detail.scales[0]
    num_identity = 0 if detail.identity is None else detail.identity.shape[1]
    averaged = s0.reprojection.shape[1] < len(detail.source_ids)
    names = winner_term_names(detail.source_ids, num_identity, averaged)
    _, winner = winner_picture(s0.result.winner, names)
    panels = {"target": detail.target.clamp(0, 1), "disparity": colorize(s0.disp)}
    for s, scale in enumerate(detail.scales[1:], start=1):
        panels[f"disparity_scale{s}"] = colorize(scale.disp)
    panels["automask"] = s0.result.automask.float().expand(-1, 3, -1, -1)
    panels["winner"] = with_legend(winner, names)
    panels["warped_source"] = s0.warped[:, 0].clamp(0, 1)
    return panels


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
