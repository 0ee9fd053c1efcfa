"""Tables of a ``mono benchmark`` result, and its ratios to a previous one."""

from __future__ import annotations

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
    )


def _load(result: dict) -> str:
    env = result["environment"]
    load = env.get("load_average_before")
    if not load:
        return "unknown"
    return f"{load[0]:.2f} (1-min average before the run) on {env['cpu_count']} CPUs"


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
