"""A tiny hand-made KITTI raw tree whose pixel values name the file they come from.

Imported by the data tests (``from kitti_tree import ...``); ``conftest.py`` wraps it in the
``kitti_root`` fixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DATE = "2011_09_26"
DRIVE = f"{DATE}/{DATE}_drive_0001_sync"
H, W = 6, 8
FX, FY, CX, CY = 4.0, 5.0, 4.5, 3.2  # devkit (1-based) principal point
BASELINE = 0.54
N_FRAMES = 5
LIDAR_DEPTH = 10.0


def frame_image(frame: int, side: str, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8: red = 10 * frame, green = camera number, blue = 20 * column."""
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[..., 0] = 10 * frame
    image[..., 1] = 2 if side == "l" else 3
    image[..., 2] = 20 * np.arange(w, dtype=np.uint8)[None, :]
    return image


def _matrix(values) -> str:
    return " ".join(f"{v:.6e}" for v in np.asarray(values, dtype=np.float64).ravel())


def write_calib(date_dir: Path) -> None:
    P2 = [[FX, 0, CX, FX * 0.06], [0, FY, CY, 0], [0, 0, 1, 0]]
    P3 = [[FX, 0, CX, -FX * (BASELINE - 0.06)], [0, FY, CY, 0], [0, 0, 1, 0]]
    (date_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        f"R_rect_00: {_matrix(np.eye(3))}\n"
        f"S_rect_02: {W:.6e} {H:.6e}\n"
        f"P_rect_02: {_matrix(P2)}\n"
        f"S_rect_03: {W:.6e} {H:.6e}\n"
        f"P_rect_03: {_matrix(P3)}\n"
    )
    # Velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward).
    R = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {_matrix(R)}\nT: {_matrix([0, 0, 0])}\n"
    )


def write_kitti_tree(root: Path, ext: str = "png") -> Path:
    """Five frames of one drive, both cameras, LiDAR scans, dense GT and a split directory.

    Each scan holds one point 10 m straight ahead (plus one behind the car, which must be
    dropped); dense GT is 12.5 m everywhere on camera 2. ``root/splits/tiny`` lists frames
    1..3 of both sides in ``train_files.txt`` and frames 2 l, 3 r in ``val_files.txt``.
    """
    date_dir = root / DATE
    drive = root / DRIVE
    for camera, side in ((2, "l"), (3, "r")):
        (drive / f"image_0{camera}" / "data").mkdir(parents=True)
        for frame in range(N_FRAMES):
            path = drive / f"image_0{camera}" / "data" / f"{frame:010d}.{ext}"
            Image.fromarray(frame_image(frame, side)).save(path)
    write_calib(date_dir)
    (drive / "velodyne_points" / "data").mkdir(parents=True)
    dense = drive / "proj_depth" / "groundtruth" / "image_02"
    dense.mkdir(parents=True)
    for frame in range(N_FRAMES):
        points = np.array([[LIDAR_DEPTH, 0, 0, 1], [-5, 0, 0, 1]], dtype=np.float32)
        points.tofile(drive / "velodyne_points" / "data" / f"{frame:010d}.bin")
        gt = np.full((H, W), int(12.5 * 256), dtype=np.uint16)
        Image.fromarray(gt).save(dense / f"{frame:010d}.png")
    splits = root / "splits" / "tiny"
    splits.mkdir(parents=True)
    lines = [f"{DRIVE} {frame} {side}" for side in "lr" for frame in (1, 2, 3)]
    (splits / "train_files.txt").write_text("\n".join(lines) + "\n")
    (splits / "val_files.txt").write_text(f"{DRIVE} 2 l\n{DRIVE} 0000000003 r\n")
    return root
