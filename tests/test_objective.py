"""The view-synthesis objective on rendered synthetic frames with their true depth and pose."""

import numpy as np
import pytest
import torch

from mono.data.synth import MOVING_CAR, SKY, make_drives, render_frame
from mono.geometry import depth_to_disp, warp
from mono.losses import photometric_error
from mono.objective import ObjectiveConfig, view_synthesis_loss

MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


@pytest.fixture(scope="module")
def drive():
    return make_drives(seed=0, preset="tiny")[0]


def _frame(drive, index):
    r = render_frame(drive, index, camera=2)
    image = torch.from_numpy(r.image).permute(2, 0, 1).float().div(255).unsqueeze(0)
    depth = torch.from_numpy(r.depth).float()[None, None]
    return r, image, depth


def _relative_pose(r_tgt, r_src) -> torch.Tensor:
    """T_src_tgt from camera-to-world poses."""
    T = np.linalg.inv(r_src.T_world_cam) @ r_tgt.T_world_cam
    return torch.from_numpy(T).float().unsqueeze(0)


def _moving_frame(drive):
    """A frame in the middle of a driving stretch (neither neighbour stationary)."""
    a, b = drive.stationary
    candidates = [t for t in range(2, drive.frames - 2) if t + 1 < a or t - 1 > b]
    return candidates[len(candidates) // 2]


def _disp_from_depth(depth):
    # Sky has depth 0 in the renderer: treat it as far away.
    depth = torch.where(depth > 0, depth, torch.full_like(depth, MAX_DEPTH))
    return depth_to_disp(depth.clamp(MIN_DEPTH, MAX_DEPTH), MIN_DEPTH, MAX_DEPTH)


def test_warp_with_true_depth_and_pose_reproduces_target(drive):
    t = _moving_frame(drive)
    r_tgt, tgt, depth = _frame(drive, t)
    r_src, src, _ = _frame(drive, t + 1)
    K = torch.from_numpy(drive.K).float().unsqueeze(0)
    T = _relative_pose(r_tgt, r_src)
    depth = torch.where(depth > 0, depth, torch.full_like(depth, 1e3))
    warped = warp(src, depth, T, K, torch.linalg.inv(K))
    # Static scene pixels (not sky, not the moving car), away from the image border where
    # forward motion brings in content the source never saw.
    ids = torch.from_numpy(r_tgt.object_id)
    static = (ids != SKY) & (ids != MOVING_CAR)
    static[:8] = static[-8:] = False
    static[:, :16] = static[:, -16:] = False
    err_warp = photometric_error(warped, tgt)[0, 0][static].mean()
    err_none = photometric_error(src, tgt)[0, 0][static].mean()
    assert err_warp < 0.05
    assert err_warp < 0.25 * err_none


def _objective_inputs(drive, t):
    r_tgt, tgt, depth = _frame(drive, t)
    r_prev, prev, _ = _frame(drive, t - 1)
    r_next, nxt, _ = _frame(drive, t + 1)
    color = torch.stack([tgt, prev, nxt], dim=1)
    T = torch.stack([_relative_pose(r_tgt, r_prev), _relative_pose(r_tgt, r_next)], dim=1)
    K = torch.from_numpy(drive.K).float().unsqueeze(0)
    disp = _disp_from_depth(depth)
    return r_tgt, color, [disp], T, K


def test_automask_covers_stationary_pair(drive):
    a, b = drive.stationary
    t = (a + b) // 2
    assert a <= t - 1 and t + 1 <= b, "tiny preset must have a stationary stretch of 3+ frames"
    _, color, disps, _, K = _objective_inputs(drive, t)
    # The network cannot know the car stood still: give it the motion of a driving stretch.
    _, _, _, T, _ = _objective_inputs(drive, _moving_frame(drive))
    gen = torch.Generator().manual_seed(0)
    _, detail = view_synthesis_loss(
        ObjectiveConfig(), color, disps, T, K, ["-1", "1"], keep=True, generator=gen
    )
    kept = detail.scales[0].result.automask.float().mean()
    assert kept < 0.1, f"auto-mask kept {kept:.2f} of a static pair"


def test_automask_covers_car_moving_with_camera(drive):
    t = _moving_frame(drive)
    r_tgt, color, disps, T, K = _objective_inputs(drive, t)
    gen = torch.Generator().manual_seed(0)
    _, detail = view_synthesis_loss(
        ObjectiveConfig(), color, disps, T, K, ["-1", "1"], keep=True, generator=gen
    )
    car = torch.from_numpy(r_tgt.object_id == MOVING_CAR)
    assert car.sum() > 50, "the moving car must be visible in the chosen frame"
    mask = detail.scales[0].result.automask[0, 0]
    assert mask[car].float().mean() < 0.2  # masked out
    static = torch.from_numpy(r_tgt.object_id != SKY) & ~car
    assert mask[static].float().mean() > 0.5  # the moving scene is mostly kept


def test_true_depth_gives_lower_loss_than_constant_depth(drive):
    t = _moving_frame(drive)
    _, color, disps, T, K = _objective_inputs(drive, t)
    cfg = ObjectiveConfig(disparity_smoothness=0.0)
    true_terms, _ = view_synthesis_loss(cfg, color, disps, T, K, ["-1", "1"])
    flat = [torch.full_like(disps[0], float(disps[0].median()))]
    flat_terms, _ = view_synthesis_loss(cfg, color, flat, T, K, ["-1", "1"])
    assert true_terms["reprojection"] < 0.8 * flat_terms["reprojection"]


def test_switches_change_the_loss(drive):
    t = _moving_frame(drive)
    _, color, disps, T, K = _objective_inputs(drive, t)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    base, _ = view_synthesis_loss(
        ObjectiveConfig(), color, disps, T, K, ["-1", "1"], generator=gen()
    )
    for switch in ("no_ssim", "avg_reprojection", "disable_automasking"):
        other, _ = view_synthesis_loss(
            ObjectiveConfig(**{switch: True}), color, disps, T, K, ["-1", "1"], generator=gen()
        )
        assert not torch.isclose(other["reprojection"], base["reprojection"]), switch


def test_detail_shapes_and_gradients():
    torch.manual_seed(0)
    b, h, w = 2, 64, 96
    color = torch.rand(b, 3, 3, h, w)
    disps = [torch.rand(b, 1, h // 2**s, w // 2**s, requires_grad=True) for s in range(4)]
    T = torch.eye(4).repeat(b, 2, 1, 1)
    T[:, :, 0, 3] = torch.tensor([0.1, -0.1])
    K = torch.tensor([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]]).repeat(b, 1, 1)
    terms, detail = view_synthesis_loss(
        ObjectiveConfig(), color, disps, T, K, ["-1", "1"], keep=True
    )
    terms["loss"].backward()
    assert all(d.grad is not None and d.grad.abs().sum() > 0 for d in disps)
    assert len(detail.scales) == 4
    assert detail.scales[3].warped.shape == (b, 2, 3, h, w)  # full-resolution multi-scale
    assert detail.identity.shape == (b, 2, h, w)
    assert detail.scales[0].result.winner.max() <= 3
