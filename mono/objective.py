"""Monodepth2's view-synthesis objective, as one function over typed inputs.

Godard et al., "Digging into Self-Supervised Monocular Depth Prediction" (ICCV 2019):
per-pixel minimum reprojection over source frames, auto-masking of pixels that an unwarped
source already explains, full-resolution multi-scale (every scale's disparity upsampled to
the input size before warping) and edge-aware smoothness weighted 1e-3 / 2**s.

Everything here is torch + kornia (through :mod:`mono.geometry` and :mod:`mono.losses`); the
LightningModule only calls :func:`view_synthesis_loss`. With ``keep=True`` every intermediate
the loss used is returned, which is what :mod:`mono.inspect` shows in the notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from mono.frame_ids import STEREO
from mono.geometry import disp_to_depth, scale_translation, warp
from mono.losses import (
    MinReprojection,
    add_tiebreak_noise,
    min_reprojection,
    photometric_error_to_target,
    predictive_mask_loss,
    smoothness,
)


@dataclass(frozen=True)
class ObjectiveConfig:
    """Switches of the self-supervised loss; names follow Monodepth2's options.

    Attributes:
        min_depth: depth at disparity 1 (m).
        max_depth: depth at disparity 0 (m).
        ssim_weight: weight of SSIM against L1 in the photometric error (0.85).
        disparity_smoothness: smoothness weight at scale 0; scale s uses it / 2**s.
        no_ssim: plain L1 photometric error.
        avg_reprojection: average over sources instead of the per-pixel minimum.
        disable_automasking: no identity-reprojection auto-mask.
        v1_multiscale: Monodepth v1 multi-scale: compare at each scale's own resolution.
        predictive_mask: weight the reprojection by a predicted mask (Zhou et al. 2017) instead
            of auto-masking.
        automask_weight: weight of the auto-masked minimum in a blend with the unmasked one
            (1 - weight); 1 is Monodepth2's loss. Training ramps it from 0 to 1 after its
            warm-up, so that the mask does not switch on at once.
        scale_translation_by_mean_inv_depth: Monodepth2's "posecnn" rule (after Wang et al.
            2018, arXiv:1712.00175): at every scale, the translation of each temporal source is
            multiplied by the mean inverse depth of the depth it warps with; the stereo
            partner's known pose is kept.
    """

    min_depth: float = 0.1
    max_depth: float = 100.0
    ssim_weight: float = 0.85
    disparity_smoothness: float = 1e-3
    no_ssim: bool = False
    avg_reprojection: bool = False
    disable_automasking: bool = False
    v1_multiscale: bool = False
    predictive_mask: bool = False
    automask_weight: float = 1.0
    scale_translation_by_mean_inv_depth: bool = False


@dataclass
class ScaleDetail:
    """What the loss saw at one decoder scale.

    Attributes:
        disp: (B, 1, h_s, w_s) sigmoid disparity as predicted at this scale.
        depth: (B, 1, H, W) depth used for warping (upsampled unless v1 multi-scale).
        warped: (B, S, 3, H, W) every source frame warped into the target view.
        reprojection: (B, S, H, W) photometric error of each warped source.
        result: minimum / auto-mask of this scale.
        smoothness: scalar edge-aware smoothness of this scale (unweighted).
        smoothness_weights: (B, 1, h_s, w_s) the edge-aware weights exp(-|grad I|) (x direction).
    """

    disp: Tensor
    depth: Tensor
    warped: Tensor
    reprojection: Tensor
    result: MinReprojection
    smoothness: Tensor
    smoothness_weights: Tensor


@dataclass
class ObjectiveDetail:
    """All intermediates of one evaluation of the objective (for inspection).

    Attributes:
        target: (B, 3, H, W) target image.
        sources: (B, S, 3, H, W) source images, in ``source_ids`` order.
        source_ids: the frame ids of the sources (e.g. ``["-1", "1"]``).
        identity: (B, S, H, W) photometric error of the unwarped sources (with tie-break noise),
            or None when auto-masking is off.
        T_src_tgt: (B, S, 4, 4) poses given to the loss (before any per-scale translation
            scaling, see ``ObjectiveConfig.scale_translation_by_mean_inv_depth``).
        scales: per-scale details, finest first.
    """

    target: Tensor
    sources: Tensor
    source_ids: list[str]
    identity: Tensor | None
    T_src_tgt: Tensor
    scales: list[ScaleDetail] = field(default_factory=list)


def _wide(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _downscale_intrinsics(K: Tensor, factor: int) -> Tensor:
    K = K.clone()
    K[:, :2] = K[:, :2] / factor
    return K


def _photometric_stack(pred: Tensor, target: Tensor, cfg: ObjectiveConfig) -> Tensor:
    """(B, S, C, H, W) vs (B, C, H, W) -> (B, S, H, W) photometric error per source.

    Scales are compared one call each: stacking the four full-resolution scales into one warp
    and one photometric call was measured twice as slow on the CPU (tensors four times larger
    fall out of the caches), see docs/performance.md.
    """
    err = photometric_error_to_target(
        pred, target, ssim_weight=cfg.ssim_weight, use_ssim=not cfg.no_ssim
    )
    return err[:, :, 0]


def view_synthesis_loss(
    cfg: ObjectiveConfig,
    color: Tensor,
    disps: list[Tensor],
    T_src_tgt: Tensor,
    K: Tensor,
    source_ids: list[str],
    masks: list[Tensor] | None = None,
    keep: bool = False,
    generator: torch.Generator | None = None,
    with_smoothness: bool = True,
) -> tuple[dict[str, Tensor], ObjectiveDetail | None]:
    """Monodepth2's self-supervised loss for one batch, computed in float32 (or wider).

    Under mixed precision only the networks run in bfloat16: autocast is off here and the
    inputs are cast up, because bfloat16's 8 bits of mantissa would round neighbouring
    disparities of a smooth map together (smoothness), move depth = 1 / disparity by up to
    0.4 % (warping) and tie close photometric errors (per-pixel minimum).

    Args:
        cfg: loss switches.
        color: (B, F, 3, H, W) un-jittered images in [0, 1]; frame 0 is the target and frames
            1.. are the sources named by ``source_ids``.
        disps: sigmoid disparities finest first, ``disps[s]`` (B, 1, H / 2**s, W / 2**s).
        T_src_tgt: (B, S, 4, 4) target-to-source transforms, one per source.
        K: (B, 3, 3) pixel intrinsics at (H, W).
        source_ids: frame ids of the sources ("s" keeps its pose under the posecnn rule).
        masks: with ``cfg.predictive_mask``, per-scale (B, S, h_s, w_s) masks in [0, 1].
        keep: also return every intermediate (costs memory; for inspection only).
        generator: random generator for the auto-mask tie-break noise.
        with_smoothness: also compute the smoothness (``False``: "reprojection" only, unless
            ``keep`` needs it for the detail).

    Returns:
        (terms, detail): ``terms`` has "loss" (the total to minimise), "reprojection" and
        "smoothness" (averaged over scales); ``detail`` is None unless ``keep``.
    """

    with torch.autocast(color.device.type, enabled=False):
        return _view_synthesis_loss(
            cfg,
            _wide(color),
            [_wide(d) for d in disps],
            _wide(T_src_tgt),
            _wide(K),
            source_ids,
            masks=None if masks is None else [_wide(m) for m in masks],
            keep=keep,
            generator=generator,
            with_smoothness=with_smoothness,
        )


def _view_synthesis_loss(
    cfg: ObjectiveConfig,
    color: Tensor,
    disps: list[Tensor],
    T_src_tgt: Tensor,
    K: Tensor,
    source_ids: list[str],
    masks: list[Tensor] | None = None,
    keep: bool = False,
    generator: torch.Generator | None = None,
    with_smoothness: bool = True,
) -> tuple[dict[str, Tensor], ObjectiveDetail | None]:
    b, f, _, h, w = color.shape
    target, sources = color[:, 0], color[:, 1:]
    n_src = f - 1
    if T_src_tgt.shape[:2] != (b, n_src):
        raise ValueError(
            f"T_src_tgt has shape {tuple(T_src_tgt.shape)}, expected ({b}, {n_src}, 4, 4)"
        )
    K_inv = torch.linalg.inv(K)
    temporal = [sid != STEREO for sid in source_ids]

    def identity_at(tgt: Tensor, src: Tensor) -> Tensor | None:
        if cfg.disable_automasking or cfg.predictive_mask:
            return None
        return add_tiebreak_noise(_photometric_stack(src, tgt, cfg), generator=generator)

    # Full-resolution multi-scale compares everything at (H, W), so the identity losses, and
    # with them the tie-break noise and the auto-mask's reference, are the same at every scale.
    identity = identity_at(target, sources)
    detail = (
        ObjectiveDetail(target, sources, list(source_ids), identity, T_src_tgt) if keep else None
    )
    reproj_terms, smooth_terms = [], []
    for s, disp in enumerate(disps):
        if cfg.v1_multiscale and s > 0:
            size = tuple(disp.shape[-2:])
            tgt_s = _resize(target, size)
            src_s = _resize(sources.flatten(0, 1), size).unflatten(0, (b, n_src))
            K_s = _downscale_intrinsics(K, 2**s)
            K_inv_s = torch.linalg.inv(K_s)
            ident_s = identity_at(tgt_s, src_s)
            disp_full = disp
        else:
            tgt_s, src_s, K_s, K_inv_s, ident_s = target, sources, K, K_inv, identity
            disp_full = _resize(disp, (h, w))
        _, depth = disp_to_depth(disp_full, cfg.min_depth, cfg.max_depth)
        hs, ws = depth.shape[-2:]
        T_s = T_src_tgt
        if cfg.scale_translation_by_mean_inv_depth:
            T_s = scale_translation(T_src_tgt, (1 / depth).mean(dim=(1, 2, 3)), temporal)
        warped = warp(
            src_s.reshape(b * n_src, 3, hs, ws),
            depth.repeat_interleave(n_src, dim=0),
            T_s.reshape(b * n_src, 4, 4),
            K_s.repeat_interleave(n_src, dim=0),
            K_inv_s.repeat_interleave(n_src, dim=0),
        ).reshape(b, n_src, 3, hs, ws)
        reprojection = _photometric_stack(warped, tgt_s, cfg)
        if masks is not None:
            reprojection = reprojection * _resize(masks[s], (hs, ws))
        result = min_reprojection(reprojection, ident_s, average=cfg.avg_reprojection)
        loss = result.loss.mean()
        if ident_s is not None and cfg.automask_weight < 1:
            unmasked = min_reprojection(reprojection, None, average=cfg.avg_reprojection)
            loss = cfg.automask_weight * loss + (1 - cfg.automask_weight) * unmasked.loss.mean()
        reproj_terms.append(loss)

        if masks is not None:
            reproj_terms[-1] = reproj_terms[-1] + predictive_mask_loss(masks[s])
        if not (with_smoothness or keep):
            continue
        color_s = _resize(target, tuple(disp.shape[-2:]))
        smooth = smoothness(disp, color_s)
        smooth_terms.append(smooth * cfg.disparity_smoothness / 2**s)
        if detail is not None:
            grad_img = (color_s[..., :, 1:] - color_s[..., :, :-1]).abs().mean(1, keepdim=True)
            detail.scales.append(
                ScaleDetail(disp, depth, warped, reprojection, result, smooth, torch.exp(-grad_img))
            )
    reprojection = torch.stack(reproj_terms).mean()
    if not smooth_terms:
        return {"reprojection": reprojection}, detail
    smooth_mean = torch.stack(smooth_terms).mean()
    terms = {
        "loss": reprojection + smooth_mean,
        "reprojection": reprojection,
        "smoothness": smooth_mean,
    }
    return terms, detail


def reprojection_loss(
    cfg: ObjectiveConfig,
    color: Tensor,
    disps: list[Tensor],
    T_src_tgt: Tensor,
    K: Tensor,
    source_ids: list[str],
    masks: list[Tensor] | None = None,
    keep: bool = False,
) -> tuple[Tensor, ObjectiveDetail | None]:
    """The view-synthesis part of :func:`view_synthesis_loss` alone (no smoothness): the
    per-pixel minimum reprojection, auto-masked, averaged over scales (plus the predictive
    mask's regulariser with ``cfg.predictive_mask``). Same arguments; returns (loss, detail)."""
    terms, detail = view_synthesis_loss(
        cfg, color, disps, T_src_tgt, K, source_ids, masks, keep, with_smoothness=False
    )
    return terms["reprojection"], detail


def smoothness_loss(disps: list[Tensor], target: Tensor) -> Tensor:
    """Edge-aware smoothness of every scale's disparity against the target image resized to
    it, scale s weighted 1 / 2**s, averaged over scales (Monodepth2 then multiplies by
    ``disparity_smoothness``). Computed in float32 or wider.

    Args:
        disps: sigmoid disparities finest first, ``disps[s]`` (B, 1, h_s, w_s).
        target: (B, 3, H, W) un-jittered target image in [0, 1].
    """
    with torch.autocast(target.device.type, enabled=False):
        target = _wide(target)
        values = [
            smoothness(_wide(d), _resize(target, tuple(d.shape[-2:]))) / 2**s
            for s, d in enumerate(disps)
        ]
    return torch.stack(values).mean()
