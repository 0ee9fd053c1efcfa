"""Tests for mono.losses: Monodepth2's photometric terms and the supervised depth terms."""

import math

import kornia
import pytest
import torch
import torch.nn.functional as F

from mono.losses import (
    SUPERVISED_LOSSES,
    add_tiebreak_noise,
    depth_ssim_loss,
    get_supervised_loss,
    gradient_matching_loss,
    kitti_silog_loss,
    l1_depth_loss,
    l2_depth_loss,
    min_reprojection,
    photometric_error,
    photometric_error_to_target,
    predictive_mask_loss,
    silog_loss,
    smoothness,
    ssim,
)

C1, C2 = 0.01**2, 0.03**2
D64 = torch.float64


def constant_ssim_loss(a, b):
    """SSIM dissimilarity of two constant images: no variance, only the luminance term."""
    return (1 - (2 * a * b + C1) / (a * a + b * b + C1)) / 2


# --- SSIM and photometric error --------------------------------------------------------------


def pooled_ssim(x, y):
    """SSIM written the plain way (avg_pool2d over a reflection pad, autograd's backward)."""

    def box(t):
        return F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), 3, 1)

    mu_x, mu_y = box(x), box(y)
    sx, sy, sxy = box(x * x) - mu_x**2, box(y * y) - mu_y**2, box(x * y) - mu_x * mu_y
    n = (2 * mu_x * mu_y + C1) * (2 * sxy + C2)
    d = (mu_x**2 + mu_y**2 + C1) * (sx + sy + C2)
    return torch.clamp((1 - n / d) / 2, 0, 1)


def test_ssim_value_and_gradient_equal_the_pooled_formula():
    # The box filter's hand-written backward against autograd through avg_pool2d, in float64.
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 7, dtype=D64, requires_grad=True)
    y = torch.rand(2, 3, 5, 7, dtype=D64)
    weights = torch.rand(2, 3, 5, 7, dtype=D64)
    (grad,) = torch.autograd.grad((ssim(x, y) * weights).sum(), x)
    (want_grad,) = torch.autograd.grad((pooled_ssim(x, y) * weights).sum(), x)
    torch.testing.assert_close(ssim(x, y), pooled_ssim(x, y), rtol=0, atol=1e-14)
    torch.testing.assert_close(grad, want_grad, rtol=0, atol=1e-13)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,))


def test_photometric_error_to_target_equals_one_call_per_image():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 3, 6, 8, dtype=D64), torch.rand(2, 3, 6, 8, dtype=D64)
    stacked = photometric_error_to_target(pred, target)
    for i in range(3):
        torch.testing.assert_close(
            stacked[:, i], photometric_error(pred[:, i], target), rtol=0, atol=1e-15
        )
    with pytest.raises(ValueError, match=r"photometric_error: expected \(B, S, C, H, W\) images"):
        photometric_error_to_target(pred, target[:, :, :5])


def test_ssim_of_identical_images_is_zero():
    x = torch.rand(2, 3, 6, 8, dtype=D64)
    assert torch.allclose(ssim(x, x), torch.zeros_like(x), atol=1e-12)


def test_ssim_of_constant_images():
    out = ssim(torch.full((1, 1, 4, 5), 0.2, dtype=D64), torch.full((1, 1, 4, 5), 0.6, dtype=D64))
    assert torch.allclose(out, torch.full_like(out, constant_ssim_loss(0.2, 0.6)), atol=1e-9)


def test_ssim_uses_a_reflected_3x3_box_window():
    # On a 0/1 checkerboard every reflection-padded 3x3 box window holds 5 pixels of its centre's
    # value and 4 of the other: mean 5/9 or 4/9, variance 20/81. y = 0.5 x + 0.1 gives
    # sigma_y = sigma_x / 4 and sigma_xy = sigma_x / 2. A Gaussian window gives other numbers.
    v, u = torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij")
    x = ((u + v) % 2).to(D64).view(1, 1, 5, 6)
    y = 0.5 * x + 0.1
    var = 20 / 81

    def expected(mu_x):
        mu_y = 0.5 * mu_x + 0.1
        s = (2 * mu_x * mu_y + C1) * (2 * 0.5 * var + C2)
        s /= (mu_x**2 + mu_y**2 + C1) * (var + 0.25 * var + C2)
        return (1 - s) / 2

    want = x * expected(5 / 9) + (1 - x) * expected(4 / 9)
    assert torch.allclose(ssim(x, y), want, atol=1e-12)
    gaussian_window = kornia.losses.ssim_loss(x, y, 3, reduction="none")
    assert not torch.allclose(gaussian_window, want, atol=1e-3)


def test_ssim_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="ssim"):
        ssim(torch.rand(1, 3, 6, 8), torch.rand(1, 3, 6, 7))


def test_photometric_error_hand_computed():
    pred = torch.tensor([0.2, 0.4, 0.6], dtype=D64).view(1, 3, 1, 1).expand(2, 3, 4, 5)
    target = torch.full((2, 3, 4, 5), 0.6, dtype=D64)
    l1 = (0.4 + 0.2 + 0.0) / 3
    dssim = sum(constant_ssim_loss(a, 0.6) for a in (0.2, 0.4, 0.6)) / 3
    out = photometric_error(pred, target)
    assert out.shape == (2, 1, 4, 5)
    assert torch.allclose(out, torch.full_like(out, 0.85 * dssim + 0.15 * l1), atol=1e-9)
    plain = photometric_error(pred, target, use_ssim=False)
    assert torch.allclose(plain, torch.full_like(plain, l1))
    half = photometric_error(pred, target, ssim_weight=0.5)
    assert torch.allclose(half, torch.full_like(half, 0.5 * dssim + 0.5 * l1), atol=1e-9)


# --- tie-break noise and minimum reprojection ------------------------------------------------


def test_tiebreak_noise_is_small_reproducible_and_leaves_input():
    identity = torch.zeros(1, 2, 60, 80)
    a = add_tiebreak_noise(identity, generator=torch.Generator().manual_seed(3))
    b = add_tiebreak_noise(identity, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == identity.shape
    assert torch.equal(identity, torch.zeros_like(identity))
    assert 0.9e-5 < a.std() < 1.1e-5
    assert add_tiebreak_noise(identity, std=1.0).std() > 0.9


def occlusion_case():
    """Two sources; source 0 fits well except an occluded 2x2 block, source 1 is uniform."""
    reprojection = torch.empty(1, 2, 4, 4)
    reprojection[:, 0] = 0.1
    reprojection[:, 0, :2, :2] = 0.9
    reprojection[:, 1] = 0.2
    block = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    block[..., :2, :2] = True
    return reprojection, block


def test_min_reprojection_picks_the_unoccluded_source():
    reprojection, block = occlusion_case()
    out = min_reprojection(reprojection)
    assert torch.equal(out.loss, torch.where(block, 0.2, 0.1))
    assert torch.equal(out.winner, block.long())
    assert out.automask.all() and out.automask.dtype == torch.bool


def test_min_reprojection_indexes_after_identity():
    reprojection, block = occlusion_case()
    identity = torch.full((1, 2, 4, 4), 0.5)
    out = min_reprojection(reprojection, identity)
    assert torch.equal(out.winner, 2 + block.long())
    assert out.automask.all()


def test_automask_drops_a_static_pair():
    # Camera at rest: sources equal the target (identity error 0 up to the noise) while the
    # predicted motion blurs the warp a little: identity wins and every pixel is masked out.
    identity = add_tiebreak_noise(torch.zeros(2, 2, 6, 8))
    reprojection = torch.full((2, 2, 6, 8), 0.05)
    out = min_reprojection(reprojection, identity)
    assert not out.automask.any()
    assert (out.winner < 2).all()
    assert torch.equal(out.loss, identity.min(1, keepdim=True).values)


def test_automask_exact_ties_go_to_identity():
    errors = torch.rand(1, 2, 6, 8)
    assert not min_reprojection(errors, errors.clone()).automask.any()


def test_automask_keeps_pixels_where_reprojection_wins():
    identity = torch.full((1, 2, 2, 2), 0.3)
    reprojection = torch.full((1, 2, 2, 2), 0.4)
    reprojection[0, 1, 0, 0] = 0.1
    out = min_reprojection(reprojection, identity)
    assert out.automask.view(-1).tolist() == [True, False, False, False]
    assert out.loss.view(-1).tolist() == pytest.approx([0.1, 0.3, 0.3, 0.3])


def test_min_reprojection_average_switch():
    reprojection = torch.tensor([0.1, 0.3, 0.5, 0.7]).view(1, 2, 1, 2)  # means 0.3, 0.5
    identity = torch.tensor([0.5, 0.2, 0.1, 0.2]).view(1, 2, 1, 2)  # means 0.3, 0.2
    out = min_reprojection(reprojection, identity, average=True)
    assert out.loss.view(-1).tolist() == pytest.approx([0.3, 0.2])
    assert out.winner.view(-1).tolist() == [0, 0]  # tie at the first pixel goes to identity
    reprojection[0, :, 0, 0] = 0.0
    out = min_reprojection(reprojection, identity, average=True)
    assert out.winner.view(-1).tolist() == [1, 0]
    assert out.automask.view(-1).tolist() == [True, False]
    no_identity = min_reprojection(reprojection, None, average=True)
    assert no_identity.loss.view(-1).tolist() == pytest.approx([0.0, 0.5])


def test_min_reprojection_gradient_reaches_only_the_winner():
    reprojection, block = occlusion_case()
    reprojection.requires_grad_()
    min_reprojection(reprojection).loss.sum().backward()
    assert torch.equal(reprojection.grad, torch.cat([~block, block], 1).float())


def test_min_reprojection_rejects_mismatched_identity():
    with pytest.raises(ValueError, match="identity"):
        min_reprojection(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 5))


# --- smoothness and predictive mask ----------------------------------------------------------


def test_smoothness_hand_computed():
    disp = torch.tensor([[1.0, 2.0], [1.0, 2.0]], dtype=D64).view(1, 1, 2, 2)
    flat = torch.zeros(1, 3, 2, 2, dtype=D64)
    edge = torch.tensor([[0.0, 0.5], [0.0, 0.5]], dtype=D64).expand(1, 3, 2, 2)
    # Normalised disparity (2/3, 4/3): |dx| = 2/3 on both rows, dy = 0.
    assert smoothness(disp, flat).item() == pytest.approx(2 / 3, rel=1e-6)
    assert smoothness(disp, edge).item() == pytest.approx(2 / 3 * math.exp(-0.5), rel=1e-6)
    assert smoothness(disp, edge, normalise=False).item() == pytest.approx(math.exp(-0.5))


def test_smoothness_matches_kornia_on_normalised_disparity():
    disp = torch.rand(2, 1, 6, 8, dtype=D64)
    image = torch.rand(2, 3, 6, 8, dtype=D64)
    normalised = disp / disp.mean(dim=(2, 3), keepdim=True)
    expected = kornia.losses.inverse_depth_smoothness_loss(normalised, image)
    assert torch.allclose(smoothness(disp, image), expected, rtol=1e-6)
    assert torch.allclose(smoothness(3 * disp, image), expected, rtol=1e-6)


def test_smoothness_of_constant_disparity_is_zero():
    assert smoothness(torch.full((2, 1, 6, 8), 0.3), torch.rand(2, 3, 6, 8)).item() == 0.0


def test_predictive_mask_loss():
    assert predictive_mask_loss(torch.full((2, 2, 6, 8), 0.5)).item() == pytest.approx(
        0.2 * math.log(2)
    )
    assert predictive_mask_loss(torch.ones(1, 1, 2, 2)).item() == 0.0
    assert predictive_mask_loss(torch.zeros(1, 1, 2, 2)).item() == pytest.approx(0.2 * 100)
    mask = torch.rand(2, 2, 6, 8)
    reference = 0.2 * F.binary_cross_entropy(mask, torch.ones_like(mask))
    assert torch.allclose(predictive_mask_loss(mask), reference)


# --- supervised losses -----------------------------------------------------------------------


def log_case():
    """d = log pred - log gt = (1, 2, 0) on three valid pixels; the fourth is invalid junk."""
    gt = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=D64).view(1, 1, 2, 2)
    pred = torch.tensor([math.e, math.e**2, 1.0, 123.0], dtype=D64).view(1, 1, 2, 2)
    valid = gt > 0
    return pred, gt, valid


@pytest.mark.parametrize("lam, expected", [(0.0, 5 / 3), (0.5, 5 / 3 - 0.5), (1.0, 2 / 3)])
def test_silog_hand_computed(lam, expected):
    assert silog_loss(*log_case(), lam=lam).item() == pytest.approx(expected)


def test_kitti_silog_hand_computed():
    assert kitti_silog_loss(*log_case()).item() == pytest.approx(10 * math.sqrt(5 / 3 - 0.85))
    assert kitti_silog_loss(*log_case(), lam=1.0, scale=1.0).item() == pytest.approx(
        math.sqrt(2 / 3)
    )


def random_depths(seed=0, shape=(2, 1, 6, 8)):
    g = torch.Generator().manual_seed(seed)
    gt = 1 + 40 * torch.rand(shape, generator=g, dtype=D64)
    pred = 1 + 40 * torch.rand(shape, generator=g, dtype=D64)
    valid = torch.rand(shape, generator=g) > 0.15
    return pred, gt, valid


def test_silog_lam1_is_scale_invariant():
    pred, gt, valid = random_depths()
    base = silog_loss(pred, gt, valid, lam=1.0)
    for c in (0.01, 3.7, 250.0):
        assert torch.allclose(silog_loss(c * pred, gt, valid, lam=1.0), base)
    assert not torch.allclose(
        silog_loss(3.7 * pred, gt, valid, lam=0.5), silog_loss(pred, gt, valid)
    )


def test_silog_lam0_is_mean_squared_log_error():
    pred, gt, valid = random_depths()
    per_image = [((pred[b] / gt[b]).log()[valid[b]] ** 2).mean() for b in range(2)]
    assert torch.allclose(silog_loss(pred, gt, valid, lam=0.0), torch.stack(per_image).mean())


def test_silog_lam1_equals_pairwise_form():
    pred, gt, valid = random_depths(shape=(1, 1, 6, 8))
    d = (pred.log() - gt.log())[valid]
    n = d.numel()
    pairwise = ((d[:, None] - d[None, :]) ** 2).sum() / (2 * n * n)
    assert torch.allclose(silog_loss(pred, gt, valid, lam=1.0), pairwise)


def test_l1_l2_hand_computed():
    pred = torch.tensor([1.0, 2.0, 3.0, 99.0]).view(1, 1, 2, 2)
    gt = torch.tensor([2.0, 2.0, 5.0, 0.0]).view(1, 1, 2, 2)
    assert l1_depth_loss(pred, gt, gt > 0).item() == pytest.approx(1.0)
    assert l2_depth_loss(pred, gt, gt > 0).item() == pytest.approx(5 / 3)


def test_losses_average_per_image_over_images_with_valid_pixels():
    pred = torch.tensor([1.0, 3.0, 1.0, 1.0, 7.0, 7.0, 7.0, 7.0]).view(2, 1, 2, 2)
    gt = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]).view(2, 1, 2, 2)
    # Image 0 alone counts: errors (0, 2, 0, 0). Image 1 has no valid pixel.
    assert l1_depth_loss(pred, gt, gt > 0).item() == pytest.approx(0.5)
    valid = gt > 0
    valid[0, 0, 0, 0] = False
    valid[1, 0, 0, 0] = True  # image 1: one pixel, error 6
    assert l1_depth_loss(pred, gt.clamp(min=1), valid).item() == pytest.approx((2 / 3 + 6) / 2)


def test_depth_ssim_excludes_windows_touching_invalid_pixels():
    pred = torch.full((1, 1, 4, 4), 2.0, dtype=D64)
    gt = torch.full((1, 1, 4, 4), 3.0, dtype=D64)
    pred[0, 0, 0, 0], gt[0, 0, 0, 0] = 1000.0, 0.0
    loss = depth_ssim_loss(pred, gt, gt > 0)
    assert loss.item() == pytest.approx(constant_ssim_loss(2.0, 3.0))
    # Without the mask the junk pixel would pull the value far away.
    assert ssim(pred, gt).mean().item() > 2 * constant_ssim_loss(2.0, 3.0)


def test_gradient_matching_hand_computed():
    gt = torch.ones(1, 1, 2, 3, dtype=D64)
    R = torch.tensor([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]], dtype=D64).view(1, 1, 2, 3)
    pred = R.exp()
    valid = torch.ones_like(gt, dtype=torch.bool)
    # x pairs |1|, |2|, 0, 0 -> 3/4; y pairs 0, |1|, |3| -> 4/3.
    assert gradient_matching_loss(pred, gt, valid, num_scales=1).item() == pytest.approx(25 / 12)
    # Scale 1 keeps R[::2, ::2] = (0, 3): one x pair of 3, no y pair.
    assert gradient_matching_loss(pred, gt, valid, num_scales=2).item() == pytest.approx(
        25 / 12 + 3
    )
    valid[0, 0, 0, 2] = False  # x pairs |1|, 0, 0 -> 1/3; y pairs 0, |1| -> 1/2
    assert gradient_matching_loss(pred, gt, valid, num_scales=1).item() == pytest.approx(5 / 6)


def test_gradient_matching_is_zero_for_scaled_ground_truth():
    _, gt, valid = random_depths()
    assert gradient_matching_loss(4.2 * gt, gt, valid).item() == pytest.approx(0.0, abs=1e-12)
    assert gradient_matching_loss(4.2 * gt, gt, valid, num_scales=1).item() == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize("name", sorted(SUPERVISED_LOSSES))
def test_invalid_pixels_change_neither_value_nor_gradient(name):
    loss_fn = SUPERVISED_LOSSES[name]
    pred, gt, valid = random_depths(seed=1, shape=(2, 1, 8, 10))
    junk_pred = torch.where(valid, pred, torch.full_like(pred, -5.0))  # log would be NaN
    junk_gt = torch.where(valid, gt, torch.full_like(gt, float("nan")))
    results = []
    for p, g in ((pred, torch.where(valid, gt, 0.0)), (junk_pred, junk_gt)):
        p = p.clone().requires_grad_()
        value = loss_fn(p, g, valid)
        value.backward()
        results.append((value.detach(), p.grad))
    (value, grad), (junk_value, junk_grad) = results
    assert value > 0 and torch.isfinite(junk_value)
    assert torch.allclose(value, junk_value)
    assert torch.allclose(grad, junk_grad)
    assert torch.equal(grad[~valid], torch.zeros_like(grad[~valid]))
    assert grad[valid].abs().sum() > 0


@pytest.mark.parametrize("name", sorted(SUPERVISED_LOSSES))
def test_no_valid_pixel_gives_zero_without_nan(name):
    pred = torch.rand(2, 1, 6, 8, requires_grad=True)
    value = SUPERVISED_LOSSES[name](pred, torch.zeros(2, 1, 6, 8), torch.zeros(2, 1, 6, 8) > 0)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_kitti_silog_of_a_perfect_prediction_has_finite_gradient():
    _, gt, valid = random_depths()
    pred = gt.clone().requires_grad_()
    value = kitti_silog_loss(pred, gt, valid)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(pred.grad).all()


def test_registry_and_bad_input():
    assert set(SUPERVISED_LOSSES) == {"silog", "kitti_silog", "l1", "l2", "ssim", "gradient"}
    assert get_supervised_loss("silog") is silog_loss
    with pytest.raises(ValueError, match="unknown supervised loss 'berhu'; known: gradient"):
        get_supervised_loss("berhu")
    pred, gt, valid = random_depths()
    with pytest.raises(ValueError, match="valid must be a bool mask"):
        silog_loss(pred, gt, valid.float())
    with pytest.raises(ValueError, match=r"l1_depth_loss: pred, gt and valid"):
        l1_depth_loss(pred, gt[..., :-1], valid)
    with pytest.raises(ValueError, match="num_scales"):
        gradient_matching_loss(pred, gt, valid, num_scales=0)
