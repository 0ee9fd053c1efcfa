"""KITTI file formats written by the synthetic drives (numpy + pillow).

Calibration text files, Velodyne scans, depth-benchmark ground-truth PNGs, odometry pose
lines, timestamps and split lines, each in the exact format of the KITTI raw / depth / odometry
releases (see ``mono.data.calib`` for how they are read back).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mono.data import calib

MAX_DEPTH = 80.0  # ground truth beyond this is invalid, as in the KITTI depth benchmark
LIDAR_STRIDE = 6  # one point every ~6 columns of a scan row
CALIB_TIME = "calib_time: 01-Jan-2011 12:00:00"
# Velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward).
_VELO_AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def _line(key: str, values) -> str:
    """``key: v1 v2 ...`` with enough digits that reading it back is exact to ~1e-13."""
    return f"{key}: " + " ".join(f"{v:.12e}" for v in np.asarray(values, float).ravel())


def rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """(3, 3) rotation ``Rz @ Ry @ Rx`` from angles in radians."""
    cx, sx, cy, sy = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry)
    cz, sz = np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def write_calibration(date_dir: Path, P_rect: dict[int, np.ndarray], size: tuple[int, int]):
    """Write ``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt`` and ``calib_imu_to_velo.txt``.

    As in KITTI, the rectifying rotation and the Velodyne mounting are slightly off-axis, so
    LiDAR projection exercises the whole chain ``P_rect @ R_rect_00 @ [R | T]``.

    Args:
        date_dir: the ``<date>`` folder.
        P_rect: (3, 4) projection of each rectified camera 0-3 (1-based pixels).
        size: (height, width) of the rectified images.
    """
    h, w = size
    R_rect = rotation(0.004, -0.006, 0.003)
    cam = [CALIB_TIME, "corner_dist: 9.950000e-02"]
    for c, P in sorted(P_rect.items()):
        cam += [
            _line(f"S_0{c}", [w, h]),
            _line(f"K_0{c}", P[:, :3]),
            _line(f"D_0{c}", [0] * 5),
            _line(f"R_0{c}", np.eye(3)),
            _line(f"T_0{c}", [P[0, 3] / P[0, 0], 0.0, 0.0]),
            _line(f"S_rect_0{c}", [w, h]),
            _line(f"R_rect_0{c}", R_rect),
            _line(f"P_rect_0{c}", P),
        ]
    velo = [
        CALIB_TIME,
        _line("R", rotation(-0.003, 0.005, 0.002) @ _VELO_AXES),
        _line("T", [-0.004, -0.076, -0.272]),
        _line("delta_f", [0, 0]),
        _line("delta_c", [0, 0]),
    ]
    imu = [CALIB_TIME, _line("R", np.eye(3)), _line("T", [-0.81, 0.32, -0.80])]
    for name, lines in (
        (calib.CAM_TO_CAM, cam),
        (calib.VELO_TO_CAM, velo),
        ("calib_imu_to_velo.txt", imu),
    ):
        (date_dir / name).write_text("\n".join(lines) + "\n")


def lidar_scan(
    depth: np.ndarray,
    image: np.ndarray,
    rays: np.ndarray,
    cam2_in_rect0: float,
    velo_to_rect: np.ndarray,
    rows: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Velodyne points that project back onto camera-2 pixels with exactly their depth.

    Points are pixel centres on ``rows`` evenly spaced scan rows, one every ~6 columns (random
    phase per row), with depth in (0, MAX_DEPTH], back-projected with that depth and moved to
    Velodyne coordinates. :func:`mono.data.calib.lidar_depth` then returns the true depth at
    each of these pixels (one point per pixel) and 0 elsewhere. A mirrored eighth of the points
    lies behind the scanner (x < 0), which projection must drop.

    Args:
        depth: (H, W) camera-2 depth in metres, 0 = none; image: (H, W, 3) uint8 colours.
        rays: (H, W, 3) camera-2 rays with unit z.
        cam2_in_rect0: x translation of P_rect_02 (``P[0, 3] / P[0, 0]``): camera-2 points are
            rectified camera-0 points shifted by it.
        velo_to_rect: (4, 4) from :func:`mono.data.calib.velo_to_cam_rect`.
        rows: number of scan rows; rng: source of the column phases.

    Returns:
        (N, 4) float32 x, y, z (metres; x forward, y left, z up) and reflectance in [0, 1].
    """
    h, w = depth.shape
    scan_rows = np.unique(np.linspace(0, h - 1, rows).round().astype(np.int64))
    cols = rng.integers(0, LIDAR_STRIDE, len(scan_rows))[:, None] + np.arange(0, w, LIDAR_STRIDE)
    r = np.broadcast_to(scan_rows[:, None], cols.shape).ravel()
    c = cols.ravel()
    r, c = r[c < w], c[c < w]
    z = depth[r, c].astype(np.float64)
    keep = (z > 0) & (z <= MAX_DEPTH)
    r, c, z = r[keep], c[keep], z[keep]
    rect0 = z[:, None] * rays[r, c] - [cam2_in_rect0, 0.0, 0.0]
    homog = np.concatenate([rect0, np.ones((len(z), 1))], axis=1)
    xyz = (np.linalg.inv(velo_to_rect) @ homog.T).T[:, :3]
    points = np.concatenate([xyz, image[r, c].mean(axis=1, keepdims=True) / 255.0], axis=1)
    behind = points[::8] * [-1.0, 1.0, 1.0, 1.0] - [0.5, 0.0, 0.0, 0.0]
    return np.concatenate([points, behind]).astype(np.float32)


def depth_png(depth: np.ndarray) -> np.ndarray:
    """KITTI depth-benchmark encoding: uint16 ``round(depth * 256)``, 0 = invalid (> MAX_DEPTH)."""
    valid = (depth > 0) & (depth <= MAX_DEPTH)
    return np.where(valid, np.round(depth * 256.0), 0).astype(np.uint16)


def save_png(path: Path, array: np.ndarray) -> None:
    """Fast, deterministic PNG (uint8 RGB or uint16 grey)."""
    Image.fromarray(array).save(path, compress_level=1)


def pose_line(T_world_cam: np.ndarray) -> str:
    """One line of a KITTI odometry pose file: the top 3x4 of the pose, row-major."""
    return " ".join(f"{v:.9e}" for v in T_world_cam[:3].ravel())


def write_timestamps(path: Path, frames: int) -> None:
    """KITTI raw ``timestamps.txt``: one line per frame, 10 Hz from 12:00:00."""
    stamps = [
        f"2011-01-01 12:{t // 600:02d}:{t // 10 % 60:02d}.{t % 10}00000000" for t in range(frames)
    ]
    path.write_text("\n".join(stamps) + "\n")


def write_lines(path: Path, lines: list[str]) -> None:
    """A text file with one line each (empty file for no lines)."""
    path.write_text("".join(line + "\n" for line in lines))
