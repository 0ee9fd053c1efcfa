"""Tests for mono.geometry: conversions, poses, projection and the warp convention."""

import math

import pytest
import torch

from mono.geometry import (
    axis_angle_to_matrix,
    backproject,
    depth_to_disp,
    disp_to_depth,
    pose_vec_to_mat,
    project,
    scale_intrinsics,
    warp,
    warp_grid,
    warp_valid_mask,
)
from mono.types import identity_pose


def pinhole(fx, fy, cx, cy, batch=1, dtype=torch.float32):
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)
    K = K.expand(batch, 3, 3).clone()
    return K, torch.linalg.inv(K)


def rodrigues(v):
    """Closed form R = I + sin(t) [k]x + (1 - cos(t)) [k]x^2 for one vector, written out."""
    theta = math.sqrt(sum(c * c for c in v))
    kx, ky, kz = (c / theta for c in v)
    cross = torch.tensor([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]], dtype=torch.float64)
    return (
        torch.eye(3, dtype=torch.float64)
        + math.sin(theta) * cross
        + (1 - math.cos(theta)) * (cross @ cross)
    )


# --- disparity and depth ---------------------------------------------------------------------


def test_disp_to_depth_endpoints_and_midpoint():
    disp = torch.tensor([0.0, 1.0, 0.5])
    scaled, depth = disp_to_depth(disp, min_depth=0.1, max_depth=100.0)
    assert torch.allclose(depth, torch.tensor([100.0, 0.1, 1 / (0.01 + 9.99 * 0.5)]))
    assert torch.allclose(scaled * depth, torch.ones(3))


def test_depth_to_disp_inverts_disp_to_depth():
    disp = torch.rand(2, 1, 6, 8, dtype=torch.float64)
    _, depth = disp_to_depth(disp, 0.5, 80.0)
    assert torch.allclose(depth_to_disp(depth, 0.5, 80.0), disp)


def test_disp_to_depth_rejects_bad_range():
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        disp_to_depth(torch.rand(3), min_depth=10.0, max_depth=1.0)


# --- rotations and poses ---------------------------------------------------------------------


def test_axis_angle_quarter_turn_about_z():
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    expected = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert torch.allclose(R, expected, atol=1e-6)


@pytest.mark.parametrize("v", [(0.3, -0.2, 0.5), (1.0, 2.0, -0.5), (-2.5, 0.1, 0.0)])
def test_axis_angle_matches_rodrigues(v):
    R = axis_angle_to_matrix(torch.tensor([v], dtype=torch.float64))[0]
    assert torch.allclose(R, rodrigues(v), atol=1e-12)


def test_axis_angle_zero_is_identity():
    R = axis_angle_to_matrix(torch.zeros(3, 3))
    assert torch.equal(R, torch.eye(3).expand(3, 3, 3))


def test_axis_angle_rejects_bad_shape():
    with pytest.raises(ValueError, match="axisangle"):
        axis_angle_to_matrix(torch.zeros(2, 4))


def test_pose_vec_to_mat_layout_and_inverse():
    axisangle = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    translation = torch.tensor([[1.0, 2.0, 3.0], [-0.5, 0.0, 0.25]], dtype=torch.float64)
    T = pose_vec_to_mat(axisangle, translation)
    R = axis_angle_to_matrix(axisangle)
    assert torch.allclose(T[:, :3, :3], R)
    assert torch.allclose(T[:, :3, 3], translation)
    assert torch.equal(T[:, 3], torch.tensor([[0.0, 0, 0, 1]] * 2, dtype=torch.float64))
    T_inv = pose_vec_to_mat(axisangle, translation, invert=True)
    assert torch.allclose(T_inv[:, :3, :3], R.transpose(1, 2))
    assert torch.allclose(T_inv[:, :3, 3], -(R.transpose(1, 2) @ translation[..., None])[..., 0])
    assert torch.allclose(T_inv @ T, torch.eye(4, dtype=torch.float64).expand(2, 4, 4))


def test_pose_vec_to_mat_gradcheck():
    axisangle = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    translation = torch.tensor([[1.0, 2.0, 3.0], [-0.5, 0.0, 0.25]], dtype=torch.float64)
    for invert in (False, True):
        assert torch.autograd.gradcheck(
            lambda a, t, inv=invert: pose_vec_to_mat(a, t, inv),
            (axisangle.requires_grad_(), translation.requires_grad_()),
        )


def test_scale_intrinsics_multiplies_rows():
    K_norm = torch.tensor([[[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]]])
    K = scale_intrinsics(K_norm, height=192, width=640)
    expected = torch.tensor([[[0.58 * 640, 0.0, 320.0], [0.0, 1.92 * 192, 96.0], [0, 0, 1]]])
    assert torch.allclose(K, expected)


# --- back-projection and projection ----------------------------------------------------------


def test_backproject_hand_computed_pixel():
    _, K_inv = pinhole(2.0, 3.0, 1.0, 0.5)
    depth = torch.ones(1, 1, 3, 4)
    depth[0, 0, 1, 2] = 4.0  # row v = 1, column u = 2
    points = backproject(depth, K_inv)
    assert points.shape == (1, 3, 4, 3)
    assert torch.allclose(points[0, 1, 2], torch.tensor([(2 - 1) / 2 * 4, (1 - 0.5) / 3 * 4, 4]))
    assert torch.allclose(points[0, 0, 0], torch.tensor([-0.5, -0.5 / 3, 1.0]))


def test_project_hand_computed_point():
    K, _ = pinhole(10.0, 20.0, 3.0, 2.0)
    T = identity_pose(1)
    T[0, :3, 3] = torch.tensor([1.0, 0.0, 2.0])
    points = torch.tensor([1.0, 2.0, 2.0]).view(1, 1, 1, 3)
    uv = project(points, T, K)  # source-camera point (2, 2, 4)
    assert torch.allclose(uv[0, 0, 0], torch.tensor([10 * 2 / 4 + 3, 20 * 2 / 4 + 2.0]))


def test_project_of_backproject_is_the_pixel_grid():
    K, K_inv = pinhole(5.0, 6.0, 3.5, 2.5, batch=3)
    depth = 1 + 9 * torch.rand(3, 1, 6, 8)
    uv = project(backproject(depth, K_inv), identity_pose(3), K)
    v, u = torch.meshgrid(torch.arange(6.0), torch.arange(8.0), indexing="ij")
    assert torch.allclose(uv, torch.stack([u, v], -1).expand(3, 6, 8, 2), atol=1e-5)


# --- warping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 6])  # 6 = B * S after folding sources into the batch
def test_identity_pose_reproduces_source_for_any_depth(batch):
    K, K_inv = pinhole(5.0, 6.0, 3.5, 2.5, batch=batch)
    image = torch.rand(batch, 3, 6, 8)
    depth = 0.1 + 50 * torch.rand(batch, 1, 6, 8)
    out = warp(image, depth, identity_pose(batch), K, K_inv)
    assert torch.allclose(out, image, atol=1e-5)
    assert warp_valid_mask(depth, identity_pose(batch), K, K_inv).all()


def test_x_translation_shifts_by_fx_tx_over_z():
    # fx * tx / Z = 10 * 0.4 / 2 = 2 pixels: target pixel u reads source pixel u + 2.
    K, K_inv = pinhole(10.0, 10.0, 3.5, 2.5, batch=2)
    image = torch.rand(2, 3, 6, 8)
    depth = torch.full((2, 1, 6, 8), 2.0)
    T = identity_pose(2)
    T[:, 0, 3] = 0.4
    out = warp(image, depth, T, K, K_inv)
    assert torch.allclose(out[..., :6], image[..., 2:], atol=1e-5)
    # Beyond the right edge the border column is repeated and the pixels are flagged invalid.
    assert torch.allclose(out[..., 6:], image[..., 7:].expand(-1, -1, -1, 2), atol=1e-5)
    valid = warp_valid_mask(depth, T, K, K_inv)
    assert valid[..., :6].all() and not valid[..., 6:].any()


def test_points_behind_source_camera_are_invalid():
    K, K_inv = pinhole(10.0, 10.0, 3.5, 2.5)
    T = identity_pose(1)
    T[0, 2, 3] = -5.0  # source camera 5 units in front of a plane at depth 2
    assert not warp_valid_mask(torch.full((1, 1, 6, 8), 2.0), T, K, K_inv).any()


def test_warp_grid_is_normalised_align_corners():
    K, K_inv = pinhole(5.0, 6.0, 3.5, 2.5)
    grid = warp_grid(torch.ones(1, 1, 6, 8), identity_pose(1), K, K_inv)
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-1.0, -1.0]), atol=1e-6)
    assert torch.allclose(grid[0, -1, -1], torch.tensor([1.0, 1.0]), atol=1e-6)


def texture(points):
    """A smooth colour pattern painted on 3-D points, (..., 3) -> (..., 3) in [0, 1]."""
    x, y, z = points.unbind(-1)
    return torch.stack(
        [
            0.5 + 0.25 * torch.sin(1.5 * x) + 0.2 * torch.cos(y),
            0.5 + 0.3 * torch.cos(x + 0.5 * y),
            0.5 + 0.2 * torch.sin(y) + 0.2 * torch.sin(z),
        ],
        dim=-1,
    )


def render_plane(T_cam_tgt, K, K_inv, height, width, normal, offset):
    """Ray-trace the textured plane ``normal . P = offset`` (target frame) from a camera whose
    pose is ``T_cam_tgt``; returns the image (1, 3, H, W) and the z-depth (1, 1, H, W)."""
    R, t = T_cam_tgt[0, :3, :3], T_cam_tgt[0, :3, 3]
    v, u = torch.meshgrid(
        torch.arange(height, dtype=K.dtype), torch.arange(width, dtype=K.dtype), indexing="ij"
    )
    rays_cam = torch.stack([u, v, torch.ones_like(u)], -1) @ K_inv[0].T  # z component 1
    rays = rays_cam @ R  # rotate into the target frame: R^T d
    centre = -R.T @ t
    s = (offset - normal @ centre) / (rays @ normal)
    points = centre + s[..., None] * rays
    return texture(points).permute(2, 0, 1)[None], s[None, None]


def test_warp_reproduces_a_rendered_tilted_plane():
    height, width = 24, 32
    K, K_inv = pinhole(30.0, 30.0, 15.5, 11.5, dtype=torch.float64)
    normal = torch.tensor([0.0, 1.5, 1.0], dtype=torch.float64)  # Z = 4 - 1.5 Y: a slanted floor
    T_src_tgt = pose_vec_to_mat(
        torch.tensor([[0.02, -0.03, 0.01]], dtype=torch.float64),
        torch.tensor([[0.5, -0.1, 0.3]], dtype=torch.float64),
    )
    target_pose = identity_pose(1, dtype=torch.float64)
    target, depth = render_plane(target_pose, K, K_inv, height, width, normal, 4.0)
    source, _ = render_plane(T_src_tgt, K, K_inv, height, width, normal, 4.0)
    assert depth.min() > 2.0 and depth.max() < 12.0

    valid = warp_valid_mask(depth, T_src_tgt, K, K_inv).expand_as(target)
    assert 0.6 < valid.float().mean() < 1.0  # the sideways motion takes some pixels out of view

    def error(depth_used):
        return (warp(source, depth_used, T_src_tgt, K, K_inv) - target).abs()[valid].mean()

    # What is left is bilinear interpolation error of the smooth texture.
    assert error(depth) < 0.003
    assert error(1.3 * depth) > 5 * error(depth)
    assert (source - target).abs()[valid].mean() > 20 * error(depth)


def test_warp_gradcheck_wrt_depth_and_pose():
    torch.manual_seed(0)
    K, K_inv = pinhole(4.0, 4.0, 2.0, 1.5, batch=2, dtype=torch.float64)
    image = torch.rand(2, 2, 4, 5, dtype=torch.float64)
    depth = (2 + torch.rand(2, 1, 4, 5, dtype=torch.float64)).requires_grad_()
    axisangle = (0.05 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
    translation = (0.1 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()

    def fn(d, a, t):
        return warp(image, d, pose_vec_to_mat(a, t), K, K_inv)

    assert torch.autograd.gradcheck(fn, (depth, axisangle, translation))


def test_warp_rejects_mismatched_sizes():
    K, K_inv = pinhole(5.0, 6.0, 3.5, 2.5)
    with pytest.raises(ValueError, match="warp: image_src"):
        warp(torch.rand(1, 3, 6, 9), torch.ones(1, 1, 6, 8), identity_pose(1), K, K_inv)
    with pytest.raises(ValueError, match="T_src_tgt"):
        warp(torch.rand(1, 3, 6, 8), torch.ones(1, 1, 6, 8), identity_pose(2), K, K_inv)


def test_warp_grid_stays_precise_under_autocast():
    K, K_inv = pinhole(500.0, 500.0, 319.5, 95.5)
    depth = torch.full((1, 1, 4, 640), 7.0)
    T = identity_pose(1)
    T[0, 0, 3] = 7.0 * 0.25 / 500  # a quarter-pixel shift
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grid = warp_grid(depth, T, K, K_inv)
    assert grid.dtype == torch.float32
    u = (grid[0, 0, :, 0] + 1) * (640 - 1) / 2
    assert torch.allclose(u, torch.arange(640.0) + 0.25, atol=1e-3)


def test_warp_marks_non_finite_reprojections_nan_and_backpropagates_without_crashing():
    """A NaN in the pose made grid_sample's CPU backward segfault; now those pixels are NaN
    and the backward pass runs (the non-finite guard then stops the run)."""
    image = torch.rand(1, 3, 6, 8, requires_grad=True)
    depth = torch.full((1, 1, 6, 8), 5.0)
    depth[0, 0, 2, 3] = float("nan")
    K = torch.tensor([[[4.0, 0, 3.5], [0, 4.0, 2.5], [0, 0, 1]]])
    T = torch.eye(4).unsqueeze(0)
    out = warp(image, depth, T, K, torch.linalg.inv(K))
    assert torch.isnan(out[0, :, 2, 3]).all()
    finite = torch.ones(6, 8, dtype=torch.bool)
    finite[2, 3] = False
    assert torch.allclose(out[0][:, finite], image[0][:, finite], atol=1e-5)  # identity
    out.nan_to_num().sum().backward()
    assert torch.isfinite(image.grad).all()
