"""``mono benchmark``: where the time of a training step goes, measured, not estimated.

The real :class:`~mono.module.DepthModel` trains for ``warmup`` + ``steps`` steps on the
synthetic drives (or any KITTI-layout root) through the real DataModule. Each step is the
computation of a Lightning training step, cut into contiguous phases timed with
``time.perf_counter`` (after ``torch.cuda.synchronize`` on CUDA, so a phase owns its kernels):

    data_wait      waiting for the DataLoader's next batch
    prepare        transfer to the device, resize and colour jitter (``prepare_batch``)
    depth_forward  depth encoder + decoder (and the predictive-mask decoder when configured)
    pose_forward   pose network on every temporal pair, axis-angle -> T_src_tgt
    loss           the view-synthesis objective (warping, SSIM, minimum, smoothness)
    backward       ``loss.backward()``
    optimizer      Adam step and ``zero_grad`` (Lightning's optimiser, ``configure_optimizers``)

The phases tile the step, so their shares add up to 1. Synchronising at every boundary stops
the CPU queueing kernels ahead, so on a GPU the step time is a little above a free run's.
The DataLoader's own rate is measured separately, iterating it without the model, and so is
the networks' floor: the same steps with the objective replaced by the mean of the networks'
outputs (depth and pose forward, backward, Adam), which no change to the loss can go below.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mono.benchmark_report import PHASES, PRECISIONS, BenchmarkConfig
from mono.loss_terms import LossTerms, TermInputs, evaluate_terms


class PhaseClock:
    """Contiguous phase timer: each :meth:`lap` ends the running phase and starts the next."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.times: dict[str, float] = {}
        self._last = 0.0

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        self.times = {}
        self._last = self._now()

    def lap(self, phase: str) -> None:
        now = self._now()
        self.times[phase] = self.times.get(phase, 0.0) + now - self._last
        self._last = now


def autocast_for(precision: str, device: torch.device):
    """The context Lightning wraps a training step's forward and loss in for ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: choose from {list(PRECISIONS)}")
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def timed_loss(model, views, clock: PhaseClock) -> LossTerms:
    """``model.compute_loss(views)`` for a self-supervised model, with a lap per phase.

    The same calls as :meth:`DepthModel.compute_loss`, so the terms are identical (only the
    objective's tie-break noise draws from the global RNG). The predictive-mask decoder reads
    the depth encoder's features and is counted with the depth forward.
    """
    depth_out, per_frame_feats, target_feats = model._encode(views)
    masks = model.mask_decoder(target_feats) if model.mask_decoder is not None else None
    clock.lap("depth_forward")
    T = model.predict_poses(views, per_frame_feats)
    clock.lap("pose_forward")
    inputs = TermInputs(
        views=views,
        disps=depth_out.disps,
        depth_net=model.depth,
        T_src_tgt=T,
        K=model.warping_K(views),
        source_ids=model.source_ids,
        objective=model.objective,
        masks=masks,
    )
    terms = evaluate_terms(model.terms, inputs)
    clock.lap("loss")
    return terms


def networks_only_step(model, views, optimizer) -> float:
    """One step of the depth and pose networks alone (forward, backward of the mean of their
    outputs, Adam), in seconds: the part of a step that only lighter networks can shrink."""
    start = time.perf_counter()
    depth_out, per_frame_feats, _ = model._encode(views)
    total = sum(d.float().mean() for d in depth_out.disps)
    if model.temporal_ids:
        total = total + model.predict_poses(views, per_frame_feats).float().mean()
    total.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if views.color.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def endless(loader):
    """Batches of ``loader`` epoch after epoch, moving its sampler on at each pass."""
    epoch = 0
    while True:
        yield from loader
        epoch += 1
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)


def loader_images_per_s(datamodule, batches: int) -> float:
    """Images/s of the training DataLoader alone (its first batch, the workers' start, excluded)."""
    loader = datamodule.train_dataloader()
    stream = endless(loader)
    next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    del loader  # shuts its workers down before the training run starts its own
    return batches * datamodule.hparams.batch_size / elapsed


def _proc_kib(path: str, *fields: str) -> int:
    """Sum of the ``fields`` (kB lines such as ``VmHWM:``) of a /proc file, in bytes."""
    total = 0
    with open(path) as f:
        for line in f:
            if line.split(":")[0] in fields:
                total += int(line.split()[1]) * 1024
    return total


def process_memory() -> dict[str, int]:
    """Peak resident sets of this process and of its live children (the DataLoader workers).

    Returns:
        bytes: ``main_peak`` (``ru_maxrss``), ``workers_peak`` (sum of the children's VmHWM)
        and ``workers_private`` (their pages not shared with anyone, now). Forked workers count
        the pages they share with the main process (torch's libraries, mostly) in their
        resident set, so ``main_peak + workers_peak`` is an upper bound. Children are read from
        /proc (Linux); elsewhere both worker figures are 0.
    """
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    out = {
        "main_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        "workers_peak": 0,
        "workers_private": 0,
    }
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else []:
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(OSError):  # a child that has just exited
                    out["workers_peak"] += _proc_kib(f"/proc/{pid}/status", "VmHWM")
                    out["workers_private"] += _proc_kib(
                        f"/proc/{pid}/smaps_rollup", "Private_Clean", "Private_Dirty"
                    )
    return out


def prepare_data_root(config: BenchmarkConfig) -> str:
    """``config.data_root``, or the tiny synthetic drives rendered (once) into ``config.cache``.

    Rendering runs in a child process so that its memory does not count in the main
    process's peak.
    """
    if config.data_root is not None:
        return config.data_root
    command = [sys.executable, "-m", "mono.data.synth", "--out", config.cache, "--preset", "tiny"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return config.cache


def _summary(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1e3
    return {
        "median": float(np.median(ms)),
        "p10": float(np.percentile(ms, 10)),
        "p90": float(np.percentile(ms, 90)),
        "mean": float(ms.mean()),
    }


def run_benchmark(config: BenchmarkConfig) -> dict:
    """Train ``config.warmup`` + ``config.steps`` steps and return every figure (see the
    module docstring); times in milliseconds, memory in MiB."""
    from mono.data.datamodule import KittiDataModule  # Lightning: only when measuring
    from mono.module import DepthModel

    # Other jobs on the machine show in the 1/5/15-minute run-queue averages before the run.
    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if config.steps < 1 or config.warmup < 0:
        raise ValueError(f"--steps {config.steps} / --warmup {config.warmup}: need >= 1 / >= 0")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device")
    autocast = autocast_for(config.precision, device)
    dm = KittiDataModule(
        root=prepare_data_root(config),
        split=config.split,
        height=config.height,
        width=config.width,
        frame_ids=list(config.frame_ids),
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        depth=config.depth,
        seed=config.seed,
    )
    dm.setup("fit")
    # torch's own libraries are most of a CPU process's resident set: this is the floor.
    rss_before_model = process_memory()["main_peak"]
    torch.manual_seed(config.seed)
    model = DepthModel(
        height=config.height,
        width=config.width,
        frame_ids=list(config.frame_ids),
        num_layers=config.num_layers,
        pretrained=False,
        pose_model_type=config.pose_model_type,
        channels_last=config.channels_last,
        compile=config.compile,
    ).to(device)
    model.setup("fit")
    model.train()
    loader_rate = loader_images_per_s(dm, max(config.steps, 2))
    optimizer = model.configure_optimizers()["optimizer"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    stream = endless(dm.train_dataloader())
    clock = PhaseClock(device)
    steps: list[dict[str, float]] = []
    loss = torch.zeros(())
    for i in range(config.warmup + config.steps):
        clock.start()
        batch = next(stream)
        clock.lap("data_wait")
        views = model.on_after_batch_transfer(batch.to(device, non_blocking=True))
        clock.lap("prepare")
        with autocast:
            terms = timed_loss(model, views, clock)
        terms.loss.backward()
        clock.lap("backward")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clock.lap("optimizer")
        loss = terms.loss.detach()
        if i >= config.warmup:
            steps.append(dict(clock.times))
    memory = process_memory()  # while the workers still run
    with autocast:
        floor = [networks_only_step(model, views, optimizer) for _ in range(config.steps)]
    stream.close()

    step_times = [sum(s.values()) for s in steps]
    mean_step = float(np.mean(step_times))
    phases = {}
    for name in PHASES:
        phases[name] = _summary([s[name] for s in steps])
        phases[name]["share"] = float(np.mean([s[name] for s in steps])) / mean_step
    mib = 2**20
    cuda_peak = torch.cuda.max_memory_allocated(device) / mib if device.type == "cuda" else None
    return {
        "config": {**asdict(config), "frame_ids": list(config.frame_ids)},
        "environment": {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "load_average_before": load_before,
        },
        "step_ms": _summary(step_times),
        "images_per_s": config.batch_size * len(step_times) / sum(step_times),
        "loader_images_per_s": loader_rate,
        "phases_ms": phases,
        "networks_floor_ms": _summary(floor),
        "peak_memory_mb": cuda_peak
        if cuda_peak is not None
        else (memory["main_peak"] + memory["workers_peak"]) / mib,
        "memory": {
            "measure": "cuda_max_memory_allocated" if cuda_peak is not None else "peak_rss",
            "cuda_max_allocated_mb": cuda_peak,
            "main_rss_mb": memory["main_peak"] / mib,
            "main_rss_before_model_mb": rss_before_model / mib,
            "workers_rss_mb": memory["workers_peak"] / mib,
            "workers_private_mb": memory["workers_private"] / mib,
        },
        "final_loss": float(loss),
    }
