"""Camera geometry for view synthesis: disparity <-> depth, poses, back-projection, warping.

Conventions are those of :mod:`mono.types`: pixel centres at integer coordinates with
``align_corners=True``, and ``T_src_tgt`` maps points of the target camera into the source
camera. Every function takes its sizes from its inputs and works for any batch size, so callers
may fold the source frames into the batch (``B * S``).

Pixel grids are rebuilt on every call rather than cached: building one is negligible next to
a network pass, and a cached tensor created under ``torch.inference_mode`` (validation) could
not be reused later under autograd.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import axis_angle_to_rotation_matrix, normalize_pixel_coordinates
from kornia.geometry.linalg import transform_points
from kornia.utils import create_meshgrid
from torch import Tensor


def _check_shape(name: str, tensor: Tensor, *dims: int | None) -> None:
    """Raise a ValueError naming ``name`` unless ``tensor`` has ``len(dims)`` axes matching
    ``dims`` (``None`` matches any size)."""
    if tensor.ndim != len(dims) or any(
        d is not None and d != s for d, s in zip(dims, tensor.shape, strict=True)
    ):
        expected = "(" + ", ".join("*" if d is None else str(d) for d in dims) + ")"
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(tensor.shape)}")


def disp_to_depth(
    disp: Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[Tensor, Tensor]:
    """Map a sigmoid disparity to a depth bounded by ``[min_depth, max_depth]``.

    The disparity is rescaled linearly between ``1 / max_depth`` and ``1 / min_depth``
    (Godard et al. 2019, Monodepth2), so ``disp = 0`` gives ``max_depth`` and ``disp = 1``
    gives ``min_depth``.

    Args:
        disp: sigmoid output in [0, 1], any shape, e.g. (B, 1, H, W).
        min_depth: depth reached at ``disp = 1`` (> 0).
        max_depth: depth reached at ``disp = 0`` (> ``min_depth``).

    Returns:
        ``(scaled_disp, depth)``, both shaped like ``disp``; ``depth = 1 / scaled_disp``.
    """
    if not 0 < min_depth < max_depth:
        raise ValueError(
            f"disp_to_depth: need 0 < min_depth < max_depth, got {min_depth}, {max_depth}"
        )
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def depth_to_disp(depth: Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> Tensor:
    """Inverse of :func:`disp_to_depth`: the sigmoid disparity in [0, 1] that gives ``depth``.

    Args:
        depth: depth in ``[min_depth, max_depth]``, any shape.
        min_depth: depth at disparity 1.
        max_depth: depth at disparity 0.

    Returns:
        Disparity shaped like ``depth``.
    """
    if not 0 < min_depth < max_depth:
        raise ValueError(
            f"depth_to_disp: need 0 < min_depth < max_depth, got {min_depth}, {max_depth}"
        )
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def axis_angle_to_matrix(axisangle: Tensor) -> Tensor:
    """Rodrigues' formula: rotation matrices from axis-angle vectors.

    Args:
        axisangle: (B, 3) rotation axis times the angle in radians; zero is the identity.

    Returns:
        (B, 3, 3) rotation matrices, differentiable at the identity.
    """
    _check_shape("axis_angle_to_matrix: axisangle", axisangle, None, 3)
    return axis_angle_to_rotation_matrix(axisangle)


def pose_vec_to_mat(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """Build a rigid transform from the pose network's output (Monodepth2 semantics).

    Args:
        axisangle: (B, 3) rotation as axis times angle in radians.
        translation: (B, 3) translation.
        invert: return the inverse transform. Monodepth2 predicts the pose of the pair in
            temporal order and inverts it for the frame that precedes the target.

    Returns:
        (B, 4, 4): ``[R | t]`` when not inverted, else the exact inverse ``[R^T | -R^T t]``.
    """
    _check_shape("pose_vec_to_mat: translation", translation, None, 3)
    if axisangle.shape != translation.shape:
        raise ValueError(
            f"pose_vec_to_mat: axisangle {tuple(axisangle.shape)} and translation "
            f"{tuple(translation.shape)} must have the same shape"
        )
    rotation = axis_angle_to_matrix(axisangle)
    t = translation.unsqueeze(-1)
    if invert:
        rotation = rotation.transpose(1, 2)
        t = -rotation @ t
    top = torch.cat([rotation, t], dim=2)
    bottom = top.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(top.shape[0], 1, 4)
    return torch.cat([top, bottom], dim=1)


def scale_translation(T_src_tgt: Tensor, factor: Tensor, which: Sequence[bool]) -> Tensor:
    """Multiply the translation of chosen transforms by a per-sample factor.

    Scaling ``t`` in ``[R | t]`` scales the translation ``-R^T t`` of its inverse by the same
    factor, so this equals rebuilding an (inverted or not) pose from a scaled translation.

    Args:
        T_src_tgt: (B, S, 4, 4) transforms, one per source.
        factor: (B,) factor per sample.
        which: S flags, True for the sources to scale.

    Returns:
        (B, S, 4, 4) copy with ``T[b, s, :3, 3] * factor[b]`` where ``which[s]``.
    """
    if len(which) != T_src_tgt.shape[1]:
        raise ValueError(f"scale_translation: {len(which)} flags for {T_src_tgt.shape[1]} sources")
    gain = torch.ones(T_src_tgt.shape[:2], dtype=T_src_tgt.dtype, device=T_src_tgt.device)
    chosen = torch.tensor(list(which), dtype=torch.bool, device=T_src_tgt.device)
    gain = torch.where(chosen, factor.to(gain).unsqueeze(1), gain)
    out = T_src_tgt.clone()
    out[..., :3, 3] = T_src_tgt[..., :3, 3] * gain[..., None]
    return out


def scale_intrinsics(K_norm: Tensor, height: int, width: int) -> Tensor:
    """Pixel intrinsics for an image of ``(height, width)`` from normalised ones.

    Args:
        K_norm: (B, 3, 3) intrinsics with row 0 divided by the width and row 1 by the height.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        (B, 3, 3) pixel intrinsics: row 0 times ``width``, row 1 times ``height``.
    """
    _check_shape("scale_intrinsics: K_norm", K_norm, None, 3, 3)
    scale = K_norm.new_tensor([width, height, 1.0]).view(3, 1)
    return K_norm * scale


def _pixel_grid(height: int, width: int, like: Tensor) -> Tensor:
    """(1, H, W, 3) homogeneous pixel coordinates ``(u, v, 1)``, u along the width."""
    uv = create_meshgrid(height, width, normalized_coordinates=False, device=like.device)
    uv = uv.to(like.dtype)
    return torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)


def backproject(depth: Tensor, K_inv: Tensor) -> Tensor:
    """Lift every pixel to a 3-D point in its camera: ``X = depth * K^-1 (u, v, 1)``.

    Args:
        depth: (B, 1, H, W) z-depth (distance along the optical axis).
        K_inv: (B, 3, 3) inverse pixel intrinsics at (H, W).

    Returns:
        (B, H, W, 3) camera-frame points.
    """
    _check_shape("backproject: depth", depth, None, 1, None, None)
    _check_shape("backproject: K_inv", K_inv, depth.shape[0], 3, 3)
    height, width = depth.shape[-2:]
    rays = torch.einsum("bij,bhwj->bhwi", K_inv, _pixel_grid(height, width, depth))
    return rays * depth[:, 0, :, :, None]


def _to_source(points: Tensor, T_src_tgt: Tensor) -> Tensor:
    """(B, H, W, 3) target-camera points expressed in the source camera."""
    _check_shape("points", points, None, None, None, 3)
    _check_shape("T_src_tgt", T_src_tgt, points.shape[0], 4, 4)
    batch, height, width, _ = points.shape
    moved = transform_points(T_src_tgt, points.reshape(batch, height * width, 3))
    return moved.reshape(batch, height, width, 3)


def project(points: Tensor, T_src_tgt: Tensor, K: Tensor, eps: float = 1e-7) -> Tensor:
    """Move target-camera points into the source camera and project them to pixels.

    Depth is clamped to ``eps`` before the division (instead of Monodepth2's ``z + eps``) so
    that points in front of the camera project exactly; points behind it land far outside the
    image, where :func:`warp` samples the border and :func:`warp_valid_mask` marks them invalid.

    Args:
        points: (B, H, W, 3) points in the target camera.
        T_src_tgt: (B, 4, 4) target-to-source transform.
        K: (B, 3, 3) pixel intrinsics of the source camera.
        eps: smallest depth used in the perspective division.

    Returns:
        (B, H, W, 2) pixel coordinates ``(u, v)`` in the source image.
    """
    _check_shape("project: K", K, points.shape[0], 3, 3)
    image_h = torch.einsum("bij,bhwj->bhwi", K, _to_source(points, T_src_tgt))
    return image_h[..., :2] / image_h[..., 2:].clamp(min=eps)


def warp_grid(depth_tgt: Tensor, T_src_tgt: Tensor, K: Tensor, K_inv: Tensor) -> Tensor:
    """Sampling grid that reads the source image at the target pixels' reprojections.

    Args:
        depth_tgt: (B, 1, H, W) depth of the target view.
        T_src_tgt: (B, 4, 4) target-to-source transform.
        K: (B, 3, 3) pixel intrinsics at (H, W), shared by both views.
        K_inv: (B, 3, 3) inverse of ``K``.

    Returns:
        (B, H, W, 2) coordinates in [-1, 1] (outside when the point leaves the image) for
        ``grid_sample(..., align_corners=True)``, computed in float32 or wider.
    """
    _check_shape("warp_grid: depth_tgt", depth_tgt, None, 1, None, None)
    batch, _, height, width = depth_tgt.shape
    _check_shape("warp_grid: T_src_tgt", T_src_tgt, batch, 4, 4)
    _check_shape("warp_grid: K", K, batch, 3, 3)
    _check_shape("warp_grid: K_inv", K_inv, batch, 3, 3)
    # Half precision cannot hold the pixel coordinates of a 640-wide image to a fraction of a
    # pixel, so the geometry runs in at least float32 even under autocast.
    dtype = torch.promote_types(depth_tgt.dtype, torch.float32)
    with torch.autocast(depth_tgt.device.type, enabled=False):
        K, K_inv, T_src_tgt = K.to(dtype), K_inv.to(dtype), T_src_tgt.to(dtype)
        # project(backproject(d, K^-1), T, K) = d * (K R K^-1) (u, v, 1) + K t: the 3x3 products
        # are formed once per image, so each pixel costs one 3x3 product and one multiply-add
        # instead of three matrix products.
        rotate = K @ T_src_tgt[:, :3, :3] @ K_inv
        shift = (K @ T_src_tgt[:, :3, 3:])[:, None, None, :, 0]
        rays = torch.einsum("bij,bhwj->bhwi", rotate, _pixel_grid(height, width, depth_tgt))
        image_h = rays * depth_tgt.to(dtype)[:, 0, :, :, None] + shift
        pixels = image_h[..., :2] / image_h[..., 2:].clamp(min=1e-7)
        return normalize_pixel_coordinates(pixels, height, width)


def warp(
    image_src: Tensor, depth_tgt: Tensor, T_src_tgt: Tensor, K: Tensor, K_inv: Tensor
) -> Tensor:
    """Inverse-warp a source image into the target view (Zhou et al. 2017; Monodepth2).

    Each target pixel is back-projected with its depth, moved into the source camera, projected
    and the source is sampled bilinearly there; outside the image the border pixel is repeated.

    Args:
        image_src: (B, C, H, W) source image.
        depth_tgt: (B, 1, H, W) depth of the target view.
        T_src_tgt: (B, 4, 4) target-to-source transform.
        K: (B, 3, 3) pixel intrinsics at (H, W).
        K_inv: (B, 3, 3) inverse of ``K``.

    Returns:
        (B, C, H, W) source image resampled into the target view; NaN at target pixels whose
        reprojection is not finite (a diverged depth or pose), so the loss shows it.
    """
    _check_shape("warp: image_src", image_src, depth_tgt.shape[0], None, *depth_tgt.shape[-2:])
    grid = warp_grid(depth_tgt, T_src_tgt, K, K_inv)
    # grid_sample's CPU backward crashes the process on a NaN coordinate. Coordinates beyond
    # [-1, 1] read the border pixel with zero gradient either way, so clamping them changes
    # nothing; non-finite ones are read at a safe place and their pixels set to NaN.
    finite = torch.isfinite(grid).all(dim=-1)
    safe = torch.where(finite.unsqueeze(-1), grid.clamp(-2.0, 2.0), grid.new_tensor(2.0))
    warped = F.grid_sample(
        image_src,
        safe.to(image_src.dtype),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )
    return warped.masked_fill(~finite.unsqueeze(1), float("nan"))


def warp_valid_mask(
    depth_tgt: Tensor, T_src_tgt: Tensor, K: Tensor, K_inv: Tensor, eps: float = 1e-7
) -> Tensor:
    """Target pixels whose reprojection lies in front of the source camera and on its image
    (within half a pixel of the outer pixel centres).

    Args:
        depth_tgt: (B, 1, H, W) depth of the target view.
        T_src_tgt: (B, 4, 4) target-to-source transform.
        K: (B, 3, 3) pixel intrinsics at (H, W).
        K_inv: (B, 3, 3) inverse of ``K``.
        eps: smallest depth in the source camera counted as in front.

    Returns:
        (B, 1, H, W) bool, True where :func:`warp` reads real source pixels.
    """
    height, width = depth_tgt.shape[-2:]
    points = backproject(depth_tgt, K_inv)
    in_front = _to_source(points, T_src_tgt)[..., 2] > eps
    u, v = project(points, T_src_tgt, K, eps).unbind(-1)
    # The image covers half a pixel beyond the outer pixel centres; counting that footprint
    # also keeps border pixels valid when rounding lands them a hair outside [0, w - 1].
    inside = (u > -0.5) & (u < width - 0.5) & (v > -0.5) & (v < height - 0.5)
    return (in_front & inside).unsqueeze(1)
