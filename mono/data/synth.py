"""Deterministic synthetic driving videos written in the KITTI raw layout.

A textured street (road, facades, parked cars, sky) is ray-cast from a stereo rig that drives
~1 m per frame with gentle yaw, stands still once per drive (the stationary stretch), and
follows a car that drives rigidly with it (static in the image: what auto-masking must catch).
Images, LiDAR scans, dense depth, poses and split files are written where KITTI (raw, depth
benchmark, odometry poses) puts them, so every KITTI code path of mono runs on this data.

Modules: ``synth_scene`` (layout, camera path, ray casting), ``synth_texture`` (materials),
``synth_kitti`` (file formats). ``python -m mono.data.synth --out DIR`` writes a dataset.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mono.data import calib
from mono.data import synth_kitti as kitti
from mono.data.synth_drive import DATE, DriveSpec, RenderedFrame, make_drive, render_frame
from mono.data.synth_scene import FACADE, MOVING_CAR, PARKED_CAR, ROAD, SKY
from mono.progress import progress_bar

__all__ = [
    "PRESETS",
    "DriveSpec",
    "RenderedFrame",
    "make_drives",
    "render_frame",
    "write_dataset",
    "SKY",
    "ROAD",
    "FACADE",
    "PARKED_CAR",
    "MOVING_CAR",
]

VERSION = 1  # bump when the rendering changes, so stale datasets are not reused
MARKER = "synthetic.json"
# Image size, drive counts and lengths. Normalised intrinsics are Monodepth2's average KITTI
# ones (calib.MONODEPTH2_K), so the same K serves any resolution.
PRESETS: dict[str, dict] = {
    "tiny": dict(
        width=256,
        height=80,
        frames=24,
        train_drives=2,
        val_drives=1,
        test_drives=1,
        stationary=4,
        lidar_rows=48,
    ),
    "default": dict(
        width=416,
        height=128,
        frames=100,
        train_drives=6,
        val_drives=1,
        test_drives=1,
        stationary=8,
        lidar_rows=64,
    ),
}


def resolve_params(seed: int, preset: str, overrides: dict) -> dict:
    """The preset's parameters with ``overrides`` applied; unknown names raise ValueError."""
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset '{preset}' (choose from {sorted(PRESETS)})")
    unknown = sorted(set(overrides) - set(PRESETS[preset]))
    if unknown:
        raise ValueError(f"unknown synthetic option(s) {unknown}; known: {sorted(PRESETS[preset])}")
    params = {**PRESETS[preset], **{k: int(v) for k, v in overrides.items()}}
    problems = [
        f"{key}={params[key]} (need >= {least})"
        for key, least in [("width", 16), ("height", 16), ("train_drives", 1), ("val_drives", 0),
                           ("test_drives", 0), ("stationary", 2), ("lidar_rows", 1),
                           ("frames", params["stationary"] + 10)]
        if params[key] < least
    ]  # fmt: skip
    if problems:
        raise ValueError(f"synthetic preset '{preset}': bad option(s) " + ", ".join(problems))
    return {"version": VERSION, "seed": int(seed), "preset": preset, **params}


def make_drives(seed: int = 0, preset: str = "default", **overrides) -> list[DriveSpec]:
    """Drive specs of a dataset: train drives first, then val, then test (other layouts)."""
    p = resolve_params(seed, preset, overrides)
    splits = ["train"] * p["train_drives"] + ["val"] * p["val_drives"] + ["test"] * p["test_drives"]
    size = (p["height"], p["width"])
    return [
        make_drive(p["seed"], i, split, p["frames"], size, p["stationary"])
        for i, split in enumerate(splits)
    ]


def write_drive(
    root: Path, drive: DriveSpec, lidar_rows: int, on_frame: Callable[[int], object] | None = None
) -> None:
    """All files of one drive under ``root/<date>/<folder>`` (its calibration must exist).

    ``on_frame(1)`` is called after each frame (a progress bar's ``update``).
    """
    date_dir = root / drive.date
    out = date_dir / drive.folder
    dirs = {k: out / k / "data" for k in ("image_02", "image_03", "velodyne_points")}
    dirs["gt"] = out / "proj_depth" / "groundtruth" / "image_02"
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for k in ("image_02", "image_03", "velodyne_points"):
        kitti.write_timestamps(out / k / "timestamps.txt", drive.frames)
    velo_to_rect = calib.velo_to_cam_rect(date_dir)  # as written, so LiDAR round-trips exactly
    P2 = drive.P_rect(2)
    poses = []
    for t in range(drive.frames):
        if t == 0 or not np.array_equal(drive.poses[t], drive.poses[t - 1]):
            left, right = render_frame(drive, t, 2), render_frame(drive, t, 3)
        name = f"{t:010d}"
        kitti.save_png(dirs["image_02"] / f"{name}.png", left.image)
        kitti.save_png(dirs["image_03"] / f"{name}.png", right.image)
        kitti.save_png(dirs["gt"] / f"{name}.png", kitti.depth_png(left.depth))
        scan = kitti.lidar_scan(
            left.depth,
            left.image,
            drive.rays,
            P2[0, 3] / P2[0, 0],
            velo_to_rect,
            lidar_rows,
            np.random.default_rng([drive.seed, t]),
        )
        scan.tofile(dirs["velodyne_points"] / f"{name}.bin")
        poses.append(kitti.pose_line(left.T_world_cam))
        if on_frame is not None:
            on_frame(1)
    kitti.write_lines(out / "poses.txt", poses)


def split_lines(drive: DriveSpec) -> list[str]:
    """Split-file lines of a drive: frames 1 .. n-2 (both neighbours exist); test uses "l"."""
    sides = ("l",) if drive.split == "test" else ("l", "r")
    return [f"{drive.relpath} {t} {s}" for t in range(1, drive.frames - 1) for s in sides]


def write_dataset(
    out_dir: str | Path,
    seed: int = 0,
    preset: str = "default",
    *,
    verbose: bool = False,
    **overrides,
) -> Path:
    """Render a synthetic dataset in the KITTI raw layout; returns ``out_dir``.

    Writes, per drive, ``<date>/<date>_drive_NNNN_sync/`` with ``image_02`` and ``image_03``
    PNGs, ``velodyne_points`` scans, dense ``proj_depth/groundtruth/image_02`` PNGs (uint16
    depth * 256, 0 = sky or beyond 80 m) and ``poses.txt`` (camera 2 to world, 3x4 per line);
    the date's calibration files; ``splits/{train,val,test}_files.txt``; and last
    ``synthetic.json`` (parameters and per-drive facts), the marker of a complete dataset.
    Same seed and parameters give the same bytes; a complete dataset with the same
    parameters is reused as is.

    Args:
        out_dir: dataset root (created if needed).
        seed: seed of layouts and paths.
        preset: key of :data:`PRESETS`; ``overrides`` replace its entries (integers).
        verbose: print a line per drive written.

    Raises:
        ValueError: unknown preset or option, or an impossible drive length.
        FileExistsError: ``out_dir`` holds a complete synthetic dataset with other parameters.
    """
    root = Path(out_dir)
    params = resolve_params(seed, preset, overrides)
    marker = root / MARKER
    if marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("complete") and old.get("params") == params:
            return root
        if old.get("complete"):
            raise FileExistsError(
                f"{marker}: holds a synthetic dataset with other parameters "
                f"({old.get('params')}); remove it or choose another out_dir"
            )
    drives = make_drives(seed, preset, **overrides)
    (root / DATE).mkdir(parents=True, exist_ok=True)
    kitti.write_calibration(root / DATE, {c: drives[0].P_rect(c) for c in range(4)}, drives[0].size)
    bar = progress_bar(sum(d.frames for d in drives), f"synth: rendering {root}", "frame")
    with bar:
        for drive in drives:
            start = time.perf_counter()
            write_drive(root, drive, params["lidar_rows"], bar.update)
            if verbose:
                bar.write(
                    f"synth: wrote {drive.relpath} ({drive.split}, {drive.frames} frames) "
                    f"in {time.perf_counter() - start:.1f} s",
                    file=sys.stdout,
                )
                sys.stdout.flush()
    (root / "splits").mkdir(exist_ok=True)
    for split in ("train", "val", "test"):
        lines = [line for d in drives if d.split == split for line in split_lines(d)]
        kitti.write_lines(root / "splits" / f"{split}_files.txt", lines)
    meta = {
        "params": params,
        "date": DATE,
        "object_ids": {
            "sky": SKY,
            "road": ROAD,
            "facade": FACADE,
            "parked_car": PARKED_CAR,
            "moving_car": MOVING_CAR,
        },
        "drives": [
            {
                "folder": d.relpath,
                "split": d.split,
                "frames": d.frames,
                "seed": d.seed,
                "stationary": list(d.stationary),
                "moving_car": d.moving_car,
            }
            for d in drives
        ],
        "complete": True,
    }
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, marker)  # written last: a dataset without it is incomplete
    return root
