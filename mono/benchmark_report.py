"""The ``mono benchmark`` command without torch: its options, the tables of a result and its
ratios to a previous one (the measuring itself is :mod:`mono.benchmark`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

PHASES = (
    "data_wait",
    "prepare",
    "depth_forward",
    "pose_forward",
    "loss",
    "backward",
    "optimizer",
)


def _setting(result: dict) -> str:
    c, env = result["config"], result["environment"]
    workers = c["num_workers"]
    return (
        f"{c['height']}x{c['width']} (HxW), batch {c['batch_size']}, frames "
        f"{' '.join(c['frame_ids'])}, ResNet-{c['num_layers']} + {c['pose_model_type']} pose, "
        f"precision {c['precision']}, {c['device']} ({env['torch_threads']} torch threads), "
        f"{workers} worker{'s' if workers != 1 else ''}, {c['steps']} steps after "
        f"{c['warmup']} warm-up"
        + "".join(f", {flag}" for flag in ("channels_last", "compile") if c.get(flag))
    )


def _load(result: dict) -> str:
    env = result["environment"]
    load = env.get("load_average_before")
    if not load:
        return "unknown"
    return f"{load[0]:.2f} (1-min average before the run) on {env['cpu_count']} CPUs"


def _floor_line(result: dict) -> list[str]:
    floor = result.get("networks_floor_ms")
    if floor is None:  # results written before the floor was measured
        return []
    return [
        f"networks      median {floor['median']:.1f} ms for depth + pose forward, backward and "
        f"Adam alone: the step is {result['step_ms']['median'] / floor['median']:.2f}x that floor"
    ]


def format_report(result: dict) -> str:
    """The benchmark's table: step time, throughput, memory, and each phase's share."""
    step, mem = result["step_ms"], result["memory"]
    if mem["cuda_max_allocated_mb"] is not None:
        memory = f"{result['peak_memory_mb']:.0f} MiB (torch.cuda.max_memory_allocated)"
    else:
        memory = (
            f"{result['peak_memory_mb']:.0f} MiB peak RSS (main {mem['main_rss_mb']:.0f}, of "
            f"which {mem['main_rss_before_model_mb']:.0f} before the model was built, + workers "
            f"{mem['workers_rss_mb']:.0f}, of which {mem['workers_private_mb']:.0f} private)"
        )
    lines = [
        f"mono benchmark: {_setting(result)}",
        f"step time     median {step['median']:.1f} ms   p10 {step['p10']:.1f} ms   "
        f"p90 {step['p90']:.1f} ms",
        f"throughput    {result['images_per_s']:.2f} images/s training, "
        f"{result['loader_images_per_s']:.1f} images/s DataLoader alone",
        *_floor_line(result),
        f"peak memory   {memory}",
        f"machine load  {_load(result)}",
        "",
        f"{'phase':<15}{'median ms':>11}{'mean ms':>10}{'share':>8}",
    ]
    for name in PHASES:
        p = result["phases_ms"][name]
        lines.append(f"{name:<15}{p['median']:>11.1f}{p['mean']:>10.1f}{p['share']:>8.1%}")
    lines.append(f"{'step':<15}{step['median']:>11.1f}{step['mean']:>10.1f}{1:>8.1%}")
    return "\n".join(lines)


def comparison_rows(result: dict, other: dict) -> list[tuple[str, float, float, float]]:
    """(figure, this, other, this / other) for every figure the two results share."""
    figures = [
        ("step median ms", lambda r: r["step_ms"]["median"]),
        ("step p10 ms", lambda r: r["step_ms"]["p10"]),
        ("step p90 ms", lambda r: r["step_ms"]["p90"]),
        ("images/s", lambda r: r["images_per_s"]),
        ("loader images/s", lambda r: r["loader_images_per_s"]),
        ("peak memory MiB", lambda r: r["peak_memory_mb"]),
    ]
    figures += [
        (f"{name} mean ms", lambda r, name=name: r["phases_ms"][name]["mean"]) for name in PHASES
    ]
    rows = []
    for label, get in figures:
        try:
            this, that = float(get(result)), float(get(other))
        except (KeyError, TypeError):
            continue
        rows.append((label, this, that, this / that if that else float("nan")))
    return rows


def format_comparison(result: dict, other: dict) -> str:
    """Ratios of this run to ``other`` (a previous ``--out`` JSON); < 1 is less of it."""
    lines = [
        f"compared with: {_setting(other)}",
        f"{'figure':<22}{'this':>10}{'other':>10}{'this/other':>12}",
    ]
    for label, this, that, ratio in comparison_rows(result, other):
        lines.append(f"{label:<22}{this:>10.1f}{that:>10.1f}{ratio:>12.3f}")
    return "\n".join(lines)


PRECISIONS = ("32", "bf16-mixed")


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure; the defaults are the CPU table of docs/performance.md."""

    height: int = 96
    width: int = 320
    batch_size: int = 4
    frame_ids: tuple[str, ...] = ("0", "-1", "1")
    pose_model_type: str = "separate"
    num_layers: int = 18
    precision: str = "32"
    device: str = "cpu"
    num_workers: int = 1
    steps: int = 20
    warmup: int = 3
    data_root: str | None = None
    split: str = "splits"
    cache: str = "data/synthetic_tiny"
    depth: str = "auto"
    seed: int = 0
    channels_last: bool = False
    compile: bool = False


def _add_arguments(p: argparse.ArgumentParser) -> None:
    d = BenchmarkConfig()
    p.add_argument("--steps", type=int, default=d.steps, help="measured training steps")
    p.add_argument("--warmup", type=int, default=d.warmup, help="unmeasured steps first")
    p.add_argument("--height", type=int, default=d.height, help="network input height")
    p.add_argument("--width", type=int, default=d.width, help="network input width")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--frame-ids", nargs="+", default=list(d.frame_ids), help="e.g. 0 -1 1 s")
    p.add_argument("--pose-model-type", default=d.pose_model_type, help="separate|shared|posecnn")
    p.add_argument("--num-layers", type=int, default=d.num_layers, help="ResNet depth")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS)
    p.add_argument("--device", default=d.device, help="cpu | cuda | cuda:N")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader workers")
    p.add_argument(
        "--data.root",
        dest="data_root",
        default=None,
        help="a KITTI-layout root; default: the tiny synthetic drives rendered into --cache",
    )
    p.add_argument(
        "--data.split",
        dest="split",
        default=d.split,
        help="training split (as data.split): the synthetic drives' own 'splits', or eigen_zhou",
    )
    p.add_argument("--cache", default=d.cache, help="where the tiny synthetic drives are rendered")
    p.add_argument("--depth", default=d.depth, help="ground truth the loader reads (as data.depth)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--channels-last", action="store_true", help="networks in NHWC order (model.channels_last)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the networks (model.compile; compiles during the warm-up steps)",
    )
    p.add_argument("--out", default=None, help="write every figure to this JSON file")
    p.add_argument("--compare", default=None, help="a previous --out JSON: print ratios to it")


def _run(ns: argparse.Namespace) -> None:
    names = set(BenchmarkConfig.__dataclass_fields__)
    fields = {k: v for k, v in vars(ns).items() if k in names}
    config = BenchmarkConfig(**{**fields, "frame_ids": tuple(fields["frame_ids"])})
    from mono.benchmark import run_benchmark  # torch: only when measuring

    try:
        result = run_benchmark(config)
    except ValueError as error:
        raise SystemExit(f"mono benchmark: {error}") from None
    print(format_report(result))
    if ns.out:
        Path(ns.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"figures written to {ns.out}")
    if ns.compare:
        print(format_comparison(result, json.loads(Path(ns.compare).read_text())))


COMMANDS = {"benchmark": (_add_arguments, _run)}
