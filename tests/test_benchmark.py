"""`mono benchmark`: a short real run has every figure, the phases tile the step, and the
timed step computes exactly the training step's loss."""

import json
import math

import pytest
import torch

from mono.benchmark import PhaseClock, timed_loss
from mono.benchmark_report import PHASES, comparison_rows
from mono.cli import main
from mono.data.datamodule import KittiDataModule
from mono.module import DepthModel

BATCH, STEPS = 2, 3


def _positive_finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def bench_json(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    args = ["benchmark", "--data.root", str(synthetic_root), "--height", "64", "--width", "64"]
    args += ["--batch-size", str(BATCH), "--steps", str(STEPS), "--warmup", "1"]
    args += ["--num-workers", "1", "--out", str(out)]
    main(args)
    return out


def test_json_has_every_figure_positive_and_finite(bench_json):
    r = json.loads(bench_json.read_text())
    for stat in ("median", "p10", "p90", "mean"):
        assert _positive_finite(r["step_ms"][stat]), stat
    assert r["step_ms"]["p10"] <= r["step_ms"]["median"] <= r["step_ms"]["p90"]
    for name in PHASES:
        for stat in ("median", "p10", "p90", "mean", "share"):
            assert _positive_finite(r["phases_ms"][name][stat]), (name, stat)
    for key in ("images_per_s", "loader_images_per_s", "peak_memory_mb", "final_loss"):
        assert _positive_finite(r[key]), key
    mem = r["memory"]
    assert mem["measure"] == "peak_rss" and mem["cuda_max_allocated_mb"] is None
    for key in ("main_rss_mb", "main_rss_before_model_mb", "workers_rss_mb", "workers_private_mb"):
        assert _positive_finite(mem[key]), key
    assert r["peak_memory_mb"] == pytest.approx(mem["main_rss_mb"] + mem["workers_rss_mb"])
    assert mem["main_rss_before_model_mb"] <= mem["main_rss_mb"]
    assert mem["workers_private_mb"] < mem["workers_rss_mb"]
    assert len(r["environment"]["load_average_before"]) == 3
    assert r["config"]["steps"] == STEPS and r["config"]["frame_ids"] == ["0", "-1", "1"]


def test_networks_floor_is_below_the_step(bench_json):
    # The floor is the same networks without the objective: the full step cannot be faster,
    # and the networks' forward alone already costs more than nothing.
    r = json.loads(bench_json.read_text())
    floor = r["networks_floor_ms"]
    assert _positive_finite(floor["median"])
    forward = r["phases_ms"]["depth_forward"]["median"] + r["phases_ms"]["pose_forward"]["median"]
    assert forward < floor["median"] < r["step_ms"]["median"]


def test_phases_tile_the_step(bench_json):
    r = json.loads(bench_json.read_text())
    phases = r["phases_ms"]
    assert sum(p["share"] for p in phases.values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(p["mean"] for p in phases.values()) == pytest.approx(r["step_ms"]["mean"])
    # images/s over the measured steps: BATCH images per mean step.
    assert r["images_per_s"] == pytest.approx(BATCH * 1e3 / r["step_ms"]["mean"])


def test_compare_prints_ratios(bench_json, synthetic_root, capsys):
    r = json.loads(bench_json.read_text())
    rows = dict((label, ratio) for label, _, _, ratio in comparison_rows(r, r))
    assert set(rows) >= {"step median ms", "images/s", "peak memory MiB", "backward mean ms"}
    assert all(ratio == 1.0 for ratio in rows.values())
    slower = json.loads(bench_json.read_text())
    slower["step_ms"]["median"] *= 4
    slower["images_per_s"] /= 4
    rows = {label: ratio for label, _, _, ratio in comparison_rows(r, slower)}
    assert rows["step median ms"] == pytest.approx(0.25)
    assert rows["images/s"] == pytest.approx(4.0)


def test_timed_step_is_the_training_step(synthetic_root):
    dm = KittiDataModule(
        root=str(synthetic_root), split="splits", height=64, width=64, batch_size=2, num_workers=0
    )
    dm.setup("fit")
    torch.manual_seed(0)
    model = DepthModel(height=64, width=64, pretrained=False)
    views = model.on_after_batch_transfer(next(iter(dm.train_dataloader())))
    clock = PhaseClock(torch.device("cpu"))
    clock.start()
    torch.manual_seed(1)  # the auto-mask tie-break noise
    timed = timed_loss(model, views, clock)
    torch.manual_seed(1)
    reference = model.compute_loss(views)
    assert set(clock.times) == {"depth_forward", "pose_forward", "loss"}
    torch.testing.assert_close(timed.values, reference.values, rtol=0, atol=0)
    torch.testing.assert_close(timed.loss, reference.loss, rtol=0, atol=0)


def test_cli_errors_name_the_option(synthetic_root):
    base = ["benchmark", "--data.root", str(synthetic_root), "--height", "64", "--width", "64"]
    with pytest.raises(SystemExit, match=r"^mono benchmark: --steps 0 / --warmup 1: need >= 1"):
        main(base + ["--steps", "0", "--warmup", "1"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="^mono benchmark: --device cuda: torch sees no CUDA"):
            main(base + ["--device", "cuda"])
