"""KITTI raw calibration files, LiDAR-to-image projection and the stereo scale (numpy only).

KITTI's ``P_rect_0x`` matrices project into the devkit's 1-based pixel coordinates: the
reference LiDAR projection (KITTI devkit, Monodepth2's ``generate_depth_map``) rounds and then
subtracts 1. mono keeps that convention when projecting LiDAR, so exported ground truth is
identical to the reference, and shifts the principal point by -1 when it builds 0-based
intrinsics for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mono.data.errors import DataFormatError, read_text_file
from mono.frame_ids import parse_frame_ids

CAM_TO_CAM = "calib_cam_to_cam.txt"
VELO_TO_CAM = "calib_velo_to_cam.txt"

# Monodepth2's average KITTI intrinsics, normalised by image width (row 0) and height (row 1).
MONODEPTH2_K = np.array([[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]], dtype=np.float32)
# Monodepth2's stereo baseline convention (the real one is ~0.54 m; see STEREO_SCALE_FACTOR).
MONODEPTH2_BASELINE = 0.1
# Metric scale of a model trained with the 0.1 baseline: 0.54 m / 0.1.
STEREO_SCALE_FACTOR = 5.4

CAMERA_OF_SIDE = {"l": 2, "r": 3}


def metric_scale(
    frame_ids: Sequence[str], stereo_baseline: float | str, training_mode: str = "self_supervised"
) -> float | None:
    """Factor that turns a model's predicted depth into metres; None when it has no scale.

    A self-supervised model learns the scale of the stereo baseline it warps with: "calib"
    (the calibrated baseline) gives metres; Monodepth2's 0.1 m convention gives metres / 5.4
    on KITTI-like rigs (``STEREO_SCALE_FACTOR``); any other number is taken to be the real
    baseline in metres. Without a stereo frame "s" the scale is unknown (evaluate with median
    scaling). Ground truth (supervised and hybrid training) is in metres.

    Args:
        frame_ids: training frame ids, e.g. ``["0", "-1", "1", "s"]``.
        stereo_baseline: ``data.stereo_baseline``: metres, or "calib".
        training_mode: "self_supervised", "supervised" or "hybrid".
    """
    positive = isinstance(stereo_baseline, (int, float)) and stereo_baseline > 0
    if stereo_baseline != "calib" and not positive:
        raise ValueError(f"stereo_baseline={stereo_baseline!r}: a positive number (m) or 'calib'")
    if training_mode != "self_supervised":
        return 1.0
    if not parse_frame_ids(frame_ids).stereo:
        return None
    if stereo_baseline != "calib" and float(stereo_baseline) == MONODEPTH2_BASELINE:
        return STEREO_SCALE_FACTOR
    return 1.0


class CalibrationError(DataFormatError):
    """A calibration file is missing or malformed."""


def read_calib_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read a KITTI ``key: v1 v2 ...`` calibration file; non-numeric entries are skipped.

    Raises:
        CalibrationError: the file does not exist.
        DataFormatError: the file is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    data: dict[str, np.ndarray] = {}
    for line in read_text_file(path).splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            data[key.strip()] = np.array([float(v) for v in value.split()], dtype=np.float64)
        except ValueError:
            continue  # e.g. calib_time
    return data


def _require(calib: dict[str, np.ndarray], key: str, size: int, path: Path) -> np.ndarray:
    if key not in calib or calib[key].size != size:
        raise CalibrationError(f"{path}: missing or malformed entry '{key}' ({size} numbers)")
    values = calib[key]
    bad = values[~np.isfinite(values)]
    if bad.size:  # float() parses "nan" and "inf", which would poison every projection
        raise CalibrationError(
            f"{path}: entry '{key}' holds {float(bad[0]):g}; expected {size} finite numbers"
        )
    return values


def projection_matrix(date_dir: str | Path, camera: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``P_rect_0{camera}`` (3, 4) and the rectified image size (height, width) of a date folder.

    Raises:
        CalibrationError: a missing or malformed entry, a non-finite number, a focal length
            that is not positive or an empty image size (the file and entry are named).
    """
    path = Path(date_dir) / CAM_TO_CAM
    calib = read_calib_file(path)
    P = _require(calib, f"P_rect_0{camera}", 12, path).reshape(3, 4)
    fx, fy = P[0, 0], P[1, 1]
    if not (fx > 0 and fy > 0):
        raise CalibrationError(
            f"{path}: entry 'P_rect_0{camera}' has focal lengths fx={fx:g}, fy={fy:g}; "
            "both must be positive"
        )
    w, h = _require(calib, f"S_rect_0{camera}", 2, path)
    if not (w >= 1 and h >= 1):
        raise CalibrationError(
            f"{path}: entry 'S_rect_0{camera}' has image size {w:g} x {h:g}; both must be >= 1"
        )
    return P, (int(round(h)), int(round(w)))


def normalised_intrinsics(date_dir: str | Path, camera: int) -> np.ndarray:
    """0-based pixel intrinsics of a rectified camera, normalised by its image size: (3, 3)."""
    P, (h, w) = projection_matrix(date_dir, camera)
    K = P[:, :3].copy()
    K[0, 2] -= 1.0  # 1-based devkit convention -> 0-based pixel centres
    K[1, 2] -= 1.0
    K[0] /= w
    K[1] /= h
    return K.astype(np.float32)


def stereo_baseline(date_dir: str | Path) -> float:
    """Metric distance between the rectified colour cameras 2 and 3 (KITTI: ~0.54 m)."""
    P2, _ = projection_matrix(date_dir, 2)
    P3, _ = projection_matrix(date_dir, 3)
    return float(P2[0, 3] / P2[0, 0] - P3[0, 3] / P3[0, 0])


def velo_to_cam_rect(date_dir: str | Path) -> np.ndarray:
    """(4, 4) transform from Velodyne coordinates to the rectified camera-0 frame."""
    date_dir = Path(date_dir)
    cam = read_calib_file(date_dir / CAM_TO_CAM)
    velo_path = date_dir / VELO_TO_CAM
    velo = read_calib_file(velo_path)
    T = np.eye(4)
    T[:3, :3] = _require(velo, "R", 9, velo_path).reshape(3, 3)
    T[:3, 3] = _require(velo, "T", 3, velo_path)
    R_rect = np.eye(4)
    R_rect[:3, :3] = _require(cam, "R_rect_00", 9, date_dir / CAM_TO_CAM).reshape(3, 3)
    return R_rect @ T


def load_velodyne(path: str | Path) -> np.ndarray:
    """(N, 4) float32 points (x, y, z, reflectance) from a KITTI ``.bin`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne scan not found: {path}")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def project_velodyne(
    points: np.ndarray,
    velo_to_rect: np.ndarray,
    P_rect: np.ndarray,
    size: tuple[int, int],
    depth: str = "camera",
) -> np.ndarray:
    """Sparse depth map from LiDAR points, as the KITTI/Monodepth2 evaluation builds it.

    Points behind the scanner (x < 0) are dropped; each remaining point lands on the nearest
    pixel (devkit rounding, minus 1); where several land on one pixel the nearest is kept.

    Args:
        points: (N, 3+) Velodyne points.
        velo_to_rect: (4, 4) Velodyne -> rectified camera 0.
        P_rect: (3, 4) projection of the target camera.
        size: (height, width) of the image.
        depth: "camera" stores the camera's z (for training), "velodyne" the scanner's forward
            coordinate x, which is what Monodepth2's exported Eigen ground truth holds
            (``vel_depth=True``; ~0.27 m more than camera z on KITTI).

    Returns:
        (height, width) float32 depth in metres, 0 where no point landed.
    """
    if depth not in ("camera", "velodyne"):
        raise ValueError(f"depth='{depth}': choose 'camera' or 'velodyne'")
    h, w = size
    pts = points[points[:, 0] >= 0, :3].astype(np.float64)
    pts_h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    cam = (P_rect @ velo_to_rect @ pts_h.T).T
    # The reference filters only on the scanner's x; camera mode also drops points behind the
    # camera, which the reference would mirror into the image.
    keep = cam[:, 2] > 0 if depth == "camera" else cam[:, 2] != 0
    cam, pts = cam[keep], pts[keep]
    z = cam[:, 2] if depth == "camera" else pts[:, 0]
    u = np.round(cam[:, 0] / cam[:, 2]) - 1
    v = np.round(cam[:, 1] / cam[:, 2]) - 1
    inside = (u >= 0) & (v >= 0) & (u < w) & (v < h)
    u, v, z = u[inside].astype(np.int64), v[inside].astype(np.int64), z[inside]
    depth = np.full(h * w, np.inf)
    np.minimum.at(depth, v * w + u, z)
    depth[np.isinf(depth)] = 0.0
    return depth.reshape(h, w).astype(np.float32)


def lidar_depth(
    date_dir: str | Path, velo_path: str | Path, camera: int = 2, depth: str = "camera"
) -> np.ndarray:
    """Ground-truth depth map of one frame from its Velodyne scan and the date's calibration.

    ``depth`` as in :func:`project_velodyne` ("velodyne" for the reference Eigen evaluation).
    """
    P, size = projection_matrix(date_dir, camera)
    return project_velodyne(
        load_velodyne(velo_path), velo_to_cam_rect(date_dir), P, size, depth=depth
    )
