"""Self-supervised losses of Monodepth2 (Godard et al., ICCV 2019).

Per-pixel maps come back unreduced so that the minimum over source frames, the auto-mask and
the module's weighting compose; only the regularisers return scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _check_same_shape(name: str, a: Tensor, b: Tensor) -> None:
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(
            f"{name}: expected two (B, C, H, W) tensors of one shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_targets(name: str, images: Tensor, targets: Tensor) -> None:
    if images.ndim != 5 or images.shape[:1] + images.shape[2:] != targets.shape:
        raise ValueError(
            f"{name}: expected (B, S, C, H, W) images and their (B, C, H, W) targets, got "
            f"{tuple(images.shape)} and {tuple(targets.shape)}"
        )


def _window_sums(padded: Tensor) -> Tensor:
    """Sums over every 3x3 window of ``padded`` (..., H + 2, W + 2) -> (..., H, W).

    Two separable passes of shifted adds: on the CPU a fifth of ``avg_pool2d``'s time.
    """
    rows = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
    return rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]


class _Box3(torch.autograd.Function):
    """3x3 mean over a reflection-padded input, with its adjoint written out: autograd's
    backward of the sliced adds would allocate and scatter nine zero-filled gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.input_shape = x.shape
        return _window_sums(F.pad(x, (1, 1, 1, 1), mode="reflect")) * (1 / 9)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # Each padded pixel receives the gradient of every window that covers it (a zero-padded
        # window sum), and reflection padding's adjoint folds the border back onto the input.
        grad_padded = _window_sums(F.pad(grad * (1 / 9), (2, 2, 2, 2)))
        like = grad.new_empty(ctx.input_shape)
        return torch.ops.aten.reflection_pad2d_backward(grad_padded, like, [1, 1, 1, 1])


def _box3(x: Tensor) -> Tensor:
    """3x3 mean over a reflection-padded input, keeping the size (H, W >= 2)."""
    return _Box3.apply(x)


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel SSIM dissimilarity ``clamp((1 - SSIM) / 2, 0, 1)`` (Wang et al. 2004).

    Monodepth2's variant: statistics over a 3x3 *box* window of a reflection-padded input
    (not the Gaussian window of ``kornia.losses.ssim_loss``), ``C1 = 0.01**2``, ``C2 = 0.03**2``.

    Args:
        x: (B, C, H, W) image in [0, 1] (H, W >= 2 for the reflection padding).
        y: (B, C, H, W) image in [0, 1].

    Returns:
        (B, C, H, W) dissimilarity in [0, 1]; 0 where the windows are identical.
    """
    _check_same_shape("ssim", x, y)
    return ssim_to_target(x.unsqueeze(1), y).squeeze(1)


def ssim_to_target(x: Tensor, y: Tensor) -> Tensor:
    """:func:`ssim` of several images against one target each.

    The target's window statistics are computed once and shared by all of its images, which
    is the objective's case: every warped source of every scale is compared with one target.

    Args:
        x: (B, S, C, H, W) images in [0, 1].
        y: (B, C, H, W) targets in [0, 1].

    Returns:
        (B, S, C, H, W) dissimilarity in [0, 1].
    """
    _check_targets("ssim", x, y)
    b, s, c, h, w = x.shape
    # Window means: the target's two once, each image's three in one filtering pass (the filter
    # is per channel, so stacking channels equals separate calls with fewer kernel launches).
    mu_y, mean_yy = _box3(torch.cat([y, y * y], dim=1)).unsqueeze(1).chunk(2, dim=2)
    y_wide = y.unsqueeze(1)
    stacked = torch.cat([x, x * x, x * y_wide], dim=2).reshape(b * s, 3 * c, h, w)
    mu_x, mean_xx, mean_xy = _box3(stacked).reshape(b, s, 3 * c, h, w).chunk(3, dim=2)
    sigma_x = mean_xx - mu_x**2
    sigma_y = mean_yy - mu_y**2
    sigma_xy = mean_xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def photometric_error(
    pred: Tensor, target: Tensor, ssim_weight: float = 0.85, use_ssim: bool = True
) -> Tensor:
    """Monodepth2's reprojection error ``a * SSIM + (1 - a) * L1``, averaged over channels.

    Args:
        pred: (B, C, H, W) synthesised (warped) image in [0, 1].
        target: (B, C, H, W) target image in [0, 1].
        ssim_weight: ``a``, the SSIM share (0.85 in Monodepth2).
        use_ssim: False gives plain L1 (Monodepth2's ``--no_ssim``).

    Returns:
        (B, 1, H, W) per-pixel error.
    """
    _check_same_shape("photometric_error", pred, target)
    return photometric_error_to_target(pred.unsqueeze(1), target, ssim_weight, use_ssim)[:, 0]


def photometric_error_to_target(
    pred: Tensor, target: Tensor, ssim_weight: float = 0.85, use_ssim: bool = True
) -> Tensor:
    """:func:`photometric_error` of several images against one target each.

    Args:
        pred: (B, S, C, H, W) synthesised images in [0, 1].
        target: (B, C, H, W) targets in [0, 1].
        ssim_weight, use_ssim: as in :func:`photometric_error`.

    Returns:
        (B, S, 1, H, W) per-pixel error.
    """
    _check_targets("photometric_error", pred, target)
    l1 = (pred - target.unsqueeze(1)).abs().mean(2, keepdim=True)
    if not use_ssim:
        return l1
    dissimilarity = ssim_to_target(pred, target).mean(2, keepdim=True)
    return ssim_weight * dissimilarity + (1 - ssim_weight) * l1


def add_tiebreak_noise(
    identity: Tensor, std: float = 1e-5, generator: torch.Generator | None = None
) -> Tensor:
    """Add tiny Gaussian noise to identity (un-warped) errors so that exact ties between them
    and the reprojection errors, e.g. on a textureless or static region, do not all go the same
    way in :func:`min_reprojection` (Monodepth2).

    Args:
        identity: (B, S, H, W) errors between each un-warped source and the target.
        std: noise standard deviation.
        generator: optional random generator for reproducible noise.

    Returns:
        A new tensor shaped like ``identity``; the input is left untouched.
    """
    noise = torch.randn(
        identity.shape, generator=generator, device=identity.device, dtype=identity.dtype
    )
    return identity + std * noise


@dataclass
class MinReprojection:
    """Result of :func:`min_reprojection`.

    Attributes:
        loss: (B, 1, H, W) per-pixel loss to average.
        winner: (B, 1, H, W) int64 index of the chosen error in ``[identity..., reprojection...]``
            (in ``reprojection`` alone when no identity errors were given).
        automask: (B, 1, H, W) bool, True where a reprojection error beats every identity
            error, i.e. the pixel is kept; all True without identity errors.
    """

    loss: Tensor
    winner: Tensor
    automask: Tensor


def min_reprojection(
    reprojection: Tensor, identity: Tensor | None = None, average: bool = False
) -> MinReprojection:
    """Per-pixel minimum reprojection with auto-masking of static pixels (Monodepth2, Sec. 3.3).

    Taking the minimum over source frames ignores the frames where a pixel is occluded or out
    of view. Appending the identity errors (source vs target without warping) lets a pixel whose
    appearance does not change between frames (static camera, object moving with the camera)
    pick an identity error, which carries no gradient to depth or pose: such pixels are masked.

    Args:
        reprojection: (B, S, H, W) error of each warped source against the target.
        identity: optional (B, S', H, W) error of each un-warped source, already with
            :func:`add_tiebreak_noise` applied when ties should be broken.
        average: average over sources instead of the minimum (Monodepth2's
            ``--avg_reprojection``); identity errors are averaged too, so the concatenation has
            two entries (identity mean, reprojection mean).

    Returns:
        :class:`MinReprojection`.
    """
    if reprojection.ndim != 4:
        raise ValueError(
            f"min_reprojection: reprojection must be (B, S, H, W), got {tuple(reprojection.shape)}"
        )
    if average:
        reprojection = reprojection.mean(1, keepdim=True)
    if identity is None:
        candidates, num_identity = reprojection, 0
    else:
        if (
            identity.ndim != 4
            or identity.shape[0] != reprojection.shape[0]
            or (identity.shape[2:] != reprojection.shape[2:])
        ):
            raise ValueError(
                f"min_reprojection: identity {tuple(identity.shape)} does not match "
                f"reprojection {tuple(reprojection.shape)}"
            )
        if average:
            identity = identity.mean(1, keepdim=True)
        # Identity first: exact ties then go to identity and the pixel is masked.
        candidates, num_identity = torch.cat([identity, reprojection], dim=1), identity.shape[1]
    loss, winner = candidates.min(dim=1, keepdim=True)
    return MinReprojection(loss=loss, winner=winner, automask=winner >= num_identity)


def smoothness(disp: Tensor, image: Tensor, normalise: bool = True) -> Tensor:
    """Edge-aware first-order smoothness of a disparity map (Godard et al. 2017, 2019).

    ``mean |dx d| * exp(-mean_c |dx I|) + mean |dy d| * exp(-mean_c |dy I|)`` with forward
    differences, each mean over its own differences. With ``normalise`` the disparity is first
    divided by its per-image mean (Wang et al. 2018) so the loss cannot be lowered by shrinking
    the depth scale.

    Args:
        disp: (B, 1, H, W) disparity.
        image: (B, C, H, W) image at the same size, in [0, 1].
        normalise: divide ``disp`` by its mean over (H, W) first (Monodepth2 does).

    Returns:
        Scalar loss.
    """
    if (
        disp.ndim != 4
        or disp.shape[1] != 1
        or image.ndim != 4
        or (disp.shape[0] != image.shape[0] or disp.shape[2:] != image.shape[2:])
    ):
        raise ValueError(
            f"smoothness: expected disp (B, 1, H, W) and image (B, C, H, W), got "
            f"{tuple(disp.shape)} and {tuple(image.shape)}"
        )
    if normalise:
        disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    disp_dx = (disp[..., :, :-1] - disp[..., :, 1:]).abs()
    disp_dy = (disp[..., :-1, :] - disp[..., 1:, :]).abs()
    image_dx = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    image_dy = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    return (disp_dx * torch.exp(-image_dx)).mean() + (disp_dy * torch.exp(-image_dy)).mean()


def predictive_mask_loss(mask: Tensor, weight: float = 0.2) -> Tensor:
    """Regulariser for Monodepth2's ``--predictive_mask`` baseline (Zhou et al. 2017's
    explainability mask): binary cross-entropy pulling the mask towards 1, so the network
    cannot zero out the photometric loss.

    Args:
        mask: predicted mask in (0, 1), any shape, e.g. (B, S, H, W).
        weight: factor on the cross-entropy (0.2 in Monodepth2).

    Returns:
        Scalar ``weight * mean(-log mask)``, the log clamped at -100 as in ``nn.BCELoss``.
    """
    # Written out because F.binary_cross_entropy refuses to run under autocast.
    return weight * -torch.log(mask.float()).clamp(min=-100).mean()
