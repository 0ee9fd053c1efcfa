"""mono.metrics against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from mono.metrics import (
    METRIC_NAMES,
    batch_depth_metrics,
    compute_depth_errors,
    constant_depth_baseline,
    crop_mask,
    evaluate_depth_map,
)


def test_depth_errors_hand_computed():
    gt = torch.tensor([1.0, 2.0, 4.0, 4.0])
    pred = torch.tensor([1.0, 2.0, 3.0, 2.0])
    e = compute_depth_errors(gt, pred)
    # ratios max(gt/pred, pred/gt) = 1, 1, 4/3, 2
    assert e["abs_rel"].item() == pytest.approx((0 + 0 + 1 / 4 + 2 / 4) / 4)
    assert e["sq_rel"].item() == pytest.approx((0 + 0 + 1 / 4 + 4 / 4) / 4)
    assert e["rmse"].item() == pytest.approx(math.sqrt((1 + 4) / 4))
    log_sq = math.log(4 / 3) ** 2 + math.log(2) ** 2
    assert e["rmse_log"].item() == pytest.approx(math.sqrt(log_sq / 4))
    assert e["a1"].item() == pytest.approx(0.5)  # 4/3 and 2 fail 1.25
    assert e["a2"].item() == pytest.approx(0.75)  # 4/3 < 1.5625
    assert e["a3"].item() == pytest.approx(0.75)  # 2 > 1.953125
    d = [0.0, 0.0, math.log(3 / 4), math.log(1 / 2)]
    var = sum(x * x for x in d) / 4 - (sum(d) / 4) ** 2
    assert e["silog"].item() == pytest.approx(100 * math.sqrt(var))


def test_depth_errors_numpy_gives_floats_equal_to_torch():
    gt, pred = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.0])
    e = compute_depth_errors(gt, pred)
    assert all(isinstance(v, float) for v in e.values())
    assert e["abs_rel"] == pytest.approx(1 / 6)
    assert e["rmse"] == pytest.approx(math.sqrt(4 / 3))
    t = compute_depth_errors(torch.from_numpy(gt), torch.from_numpy(pred))
    assert {k: float(v) for k, v in t.items()} == pytest.approx(e)


def test_perfect_prediction():
    gt = torch.tensor([0.5, 3.0, 7.0, 79.0])
    e = compute_depth_errors(gt, gt.clone())
    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "silog"):
        assert e[k].item() == pytest.approx(0.0, abs=1e-6)
    for k in ("a1", "a2", "a3"):
        assert e[k].item() == 1.0


def test_crop_mask_kitti_bounds():
    mask = crop_mask(375, 1242)
    assert mask.shape == (375, 1242) and mask.dtype == torch.bool
    rows, cols = torch.nonzero(mask, as_tuple=True)
    # Monodepth2's training-time hard-coded crop for this size: [153:371, 44:1197]
    assert (rows.min().item(), rows.max().item()) == (153, 370)
    assert (cols.min().item(), cols.max().item()) == (44, 1196)
    assert mask.sum().item() == (371 - 153) * (1197 - 44)
    # integer truncation trims a little off the nominal 0.5838 x 0.9281 fraction
    assert mask.float().mean().item() == pytest.approx(0.5838 * 0.9281, abs=4e-3)
    small = crop_mask(12, 40)  # rows int(4.9)=4 .. int(11.9)=11, cols int(1.44)=1 .. int(38.6)=38
    expected = torch.zeros(12, 40, dtype=torch.bool)
    expected[4:11, 1:38] = True
    assert torch.equal(small, expected)


def test_median_scaling_makes_scaled_prediction_perfect():
    gt = np.array([[1.0, 2.0], [3.0, 4.0]])
    errors, ratio = evaluate_depth_map(gt / 7.0, gt, crop="none")
    assert ratio == pytest.approx(7.0)
    assert errors["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert errors["a1"] == 1.0


def test_median_is_numpy_median_for_even_counts():
    gt = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    _, ratio = evaluate_depth_map(torch.ones(2, 2), gt, crop="none")
    assert ratio.item() == pytest.approx(2.5)  # torch.median would give 2


def test_fixed_scale_then_clamp_without_median():
    gt = np.array([[10.0, 20.0]])
    errors, ratio = evaluate_depth_map(
        gt / 5.4, gt, crop="none", median_scaling=False, fixed_scale=5.4
    )
    assert ratio == 1.0 and errors["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    # a prediction of 1000 m is clamped to 80 before scoring: |20 - 80| / 20 = 3, 0 for 10 m
    errors, _ = evaluate_depth_map(
        np.array([[10.0, 1000.0]]), gt, crop="none", median_scaling=False
    )
    assert errors["abs_rel"] == pytest.approx(1.5)


def test_valid_rules():
    gt = np.array([[0.0, 10.0, 100.0, 10.0]])
    pred = np.full_like(gt, 10.0)
    # "range": 0 and 100 (> 80) ignored -> perfect
    e, _ = evaluate_depth_map(pred, gt, crop="none", median_scaling=False)
    assert e["abs_rel"] == pytest.approx(0.0)
    # "positive": 100 counts; |100 - 10| / 100 averaged with two zeros
    e, _ = evaluate_depth_map(pred, gt, crop="none", median_scaling=False, valid="positive")
    assert e["abs_rel"] == pytest.approx(0.9 / 3)


def test_crop_excludes_outside_pixels():
    gt = torch.full((12, 40), 10.0)
    pred = torch.full((12, 40), 10.0)
    pred[0] = 1.0  # row 0 is above the Garg crop (starts at int(0.408 * 12) = 4)
    e, _ = evaluate_depth_map(pred, gt, crop="garg", median_scaling=False)
    assert e["abs_rel"].item() == pytest.approx(0.0)
    e, _ = evaluate_depth_map(pred, gt, crop="none", median_scaling=False)
    assert e["abs_rel"].item() > 0


def test_bad_options_raise():
    with pytest.raises(ValueError, match="crop='eigen'.*garg, none"):
        evaluate_depth_map(np.ones((2, 2)), np.ones((2, 2)), crop="eigen")
    with pytest.raises(ValueError, match="same"):
        evaluate_depth_map(np.ones((2, 3)), np.ones((2, 2)))


def test_batch_metrics_upsample_crop_padding_and_nan():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(2, 1, 2, 2).clone()
    up = torch.nn.functional.interpolate(pred, size=(4, 6), mode="bilinear", align_corners=False)
    gt = torch.full((2, 1, 6, 8), 50.0)  # padding that would ruin the metrics if used
    gt[0, 0, :4, :6] = 3.0 * up[0, 0]
    gt[1] = 0.0  # no valid pixel at all
    sizes = torch.tensor([[4, 6], [6, 8]])
    out = batch_depth_metrics(pred, gt, sizes, crop="none")
    assert set(out) == {*METRIC_NAMES, "ratio"}
    assert out["abs_rel"].shape == (2,)
    assert out["abs_rel"][0].item() == pytest.approx(0.0, abs=1e-6)
    assert out["ratio"][0].item() == pytest.approx(3.0)
    assert torch.isnan(out["abs_rel"][1]) and torch.isnan(out["ratio"][1])


def test_batch_metrics_equal_single_map_evaluation():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 3, 5, generator=g) + 0.5
    gt = torch.rand(2, 1, 12, 40, generator=g) * 30
    out = batch_depth_metrics(pred, gt, None, crop="garg")
    for i in range(2):
        up = torch.nn.functional.interpolate(pred[i : i + 1], size=(12, 40), mode="bilinear")
        e, _ = evaluate_depth_map(up[0, 0], gt[i, 0], crop="garg")
        assert out["rmse"][i].item() == pytest.approx(e["rmse"].item())


def test_constant_baseline_hand_computed():
    gt = torch.tensor([[1.0, 2.0], [4.0, 4.0]]).view(1, 1, 2, 2)
    out = constant_depth_baseline(gt, crop="none")
    # median of 1, 2, 4, 4 = 3 everywhere: |1-3|/1, |2-3|/2, 1/4, 1/4
    assert out["ratio"].item() == pytest.approx(3.0)
    assert out["abs_rel"].item() == pytest.approx((2 + 0.5 + 0.25 + 0.25) / 4)
    assert out["rmse"].item() == pytest.approx(math.sqrt((4 + 1 + 1 + 1) / 4))
