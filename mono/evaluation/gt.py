"""KITTI test splits: their lines, their image paths and their exported ground truth.

Ground truth is exported once per split into an ``.npz`` (key ``data``: an object array of
per-image float32 depth maps in metres, 0 = no measurement), as Monodepth2's
``export_gt_depth.py`` does. The package directory may be read-only, so the default location
is ``<data_root>/gt_depths_<split>.npz``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data import calib

SPLITS_DIR = Path(__file__).resolve().parent.parent / "data" / "splits"
GT_SPLITS = ("eigen", "eigen_benchmark")
IMAGE_SPLITS = ("eigen", "eigen_benchmark", "benchmark")
# KITTI depth-prediction benchmark test images (the devkit's depth_selection archive).
BENCHMARK_IMAGE_DIR = Path("depth_selection") / "test_depth_prediction_anonymous" / "image"


def _check_split(split: str, choices: tuple[str, ...]) -> None:
    if split not in choices:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(choices)}")


def split_file(split: str) -> Path:
    """Path of a split's ``test_files.txt`` inside the package."""
    _check_split(split, IMAGE_SPLITS)
    return SPLITS_DIR / split / "test_files.txt"


def read_split(split: str) -> list[str]:
    """Non-empty lines of a test split, e.g. ``"2011_09_26/2011_09_26_drive_0002_sync 69 l"``."""
    return [line for line in split_file(split).read_text().splitlines() if line.strip()]


def parse_line(line: str, split: str) -> tuple[str, int, str]:
    """``(folder, frame, side)`` of a split line; benchmark lines ``image N`` have side "l"."""
    parts = line.split()
    if len(parts) == 2 and split == "benchmark":
        parts.append("l")
    if len(parts) == 3 and parts[1].isdigit() and parts[2] in calib.CAMERA_OF_SIDE:
        return parts[0], int(parts[1]), parts[2]
    raise ValueError(f"{split} split: malformed line {line!r} (expected 'folder frame side')")


def default_gt_path(data_root: str | Path, split: str) -> Path:
    """Where :func:`export_gt` writes by default: ``<data_root>/gt_depths_<split>.npz``."""
    return Path(data_root) / f"gt_depths_{split}.npz"


def velodyne_depth_map(date_dir: str | Path, velo_path: str | Path, camera: int = 2) -> np.ndarray:
    """The Eigen-split ground truth of one frame, exactly as Monodepth2 exports it.

    Differs from :func:`mono.data.calib.lidar_depth` (camera depth, used for training-time
    metrics) in the two ways ``generate_depth_map(..., vel_depth=True)`` does: the stored depth
    is the point's *Velodyne* forward coordinate x (the LiDAR sits ~0.27 m behind camera 0), and
    points are dropped only when x < 0, not by their camera depth. Pixels follow the devkit
    rounding (round, minus 1); on a collision the smallest depth is kept.

    Returns:
        (H, W) float32 depth, 0 where no point landed.
    """
    return calib.lidar_depth(date_dir, velo_path, camera, depth="velodyne")


def read_depth_png(path: str | Path) -> np.ndarray:
    """KITTI depth PNG (uint16, depth * 256, 0 = invalid) -> float32 metres."""
    return np.asarray(Image.open(path), dtype=np.float32) / 256.0


def _gt_source(data_root: Path, split: str, folder: str, frame: int, side: str) -> Path:
    if split == "eigen":
        return data_root / folder / "velodyne_points" / "data" / f"{frame:010d}.bin"
    camera = calib.CAMERA_OF_SIDE[side]
    return (
        data_root / folder / "proj_depth" / "groundtruth" / f"image_0{camera}" / f"{frame:010d}.png"
    )


def export_gt(
    data_root: str | Path,
    split: str = "eigen",
    out_path: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    lines: Sequence[str] | None = None,
) -> Path:
    """Export a test split's ground-truth depth maps to an ``.npz`` (Monodepth2's layout).

    eigen: projected raw LiDAR (:func:`velodyne_depth_map`, camera 2 for side "l", 3 for "r").
    eigen_benchmark: the depth benchmark's annotated maps,
    ``<data_root>/<folder>/proj_depth/groundtruth/image_0X/<frame:010d>.png`` (uint16 / 256).

    Args:
        data_root: KITTI raw root (date folders with calibration files).
        split: "eigen" or "eigen_benchmark".
        out_path: output file; default :func:`default_gt_path`.
        log: progress sink (a line roughly every 10 %), None for silence.
        lines: split lines to export instead of the split's ``test_files.txt``.

    Returns:
        The written path.

    Raises:
        ValueError: unknown split.
        FileNotFoundError: a scan or depth PNG is missing (names the file and the split line).
    """
    _check_split(split, GT_SPLITS)
    data_root = Path(data_root)
    out = Path(out_path) if out_path is not None else default_gt_path(data_root, split)
    lines = list(read_split(split) if lines is None else lines)
    step = max(1, len(lines) // 10)
    depths = np.empty(len(lines), dtype=object)
    for i, line in enumerate(lines):
        folder, frame, side = parse_line(line, split)
        source = _gt_source(data_root, split, folder, frame, side)
        if not source.is_file():
            raise FileNotFoundError(
                f"{source} not found (line {i + 1} of the {split} split: {line!r})"
            )
        if split == "eigen":
            date_dir = data_root / folder.split("/")[0]
            depths[i] = velodyne_depth_map(date_dir, source, calib.CAMERA_OF_SIDE[side])
        else:
            depths[i] = read_depth_png(source)
        if log is not None and ((i + 1) % step == 0 or i + 1 == len(lines)):
            log(f"export-gt {split}: {i + 1}/{len(lines)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, data=depths)
    if log is not None:
        log(f"saved {len(lines)} ground-truth maps to {out}")
    return out


def load_gt(path: str | Path, data_root: str | Path | None = None, split: str = "eigen") -> list:
    """Ground-truth depth maps written by :func:`export_gt` (or by Monodepth2's exporter).

    Raises:
        FileNotFoundError: with the ``mono export-gt`` command that creates the file.
    """
    path = Path(path)
    if not path.is_file():
        root = data_root if data_root is not None else "ROOT"
        raise FileNotFoundError(
            f"ground truth not found at {path}: run `mono export-gt --data {root} "
            f"--split {split}` first"
        )
    with np.load(path, allow_pickle=True, encoding="latin1") as npz:
        data = npz["data"]
    return [np.asarray(d, dtype=np.float32) for d in data]


def _resolve_ext(path_no_ext: Path, img_ext: str) -> Path:
    if img_ext != "auto":
        return path_no_ext.with_suffix("." + img_ext.lstrip("."))
    for ext in (".png", ".jpg"):
        if path_no_ext.with_suffix(ext).is_file():
            return path_no_ext.with_suffix(ext)
    return path_no_ext.with_suffix(".png")


def test_image_paths(
    data_root: str | Path, split: str, img_ext: str = "auto", lines: Sequence[str] | None = None
) -> list[Path]:
    """Input image of every line of a test split.

    eigen / eigen_benchmark: ``<root>/<folder>/image_0{2,3}/data/<frame:010d>.<ext>`` (camera 2
    for side "l", 3 for "r"). benchmark: ``<root>/depth_selection/test_depth_prediction_anonymous/
    image/<N:010d>.png``.

    Args:
        img_ext: "png", "jpg" or "auto" (png if it exists, else jpg; decided per file).
        lines: split lines to use instead of the split's ``test_files.txt``.
    """
    _check_split(split, IMAGE_SPLITS)
    data_root = Path(data_root)
    paths = []
    for line in read_split(split) if lines is None else lines:
        folder, frame, side = parse_line(line, split)
        if split == "benchmark":
            stem = data_root / BENCHMARK_IMAGE_DIR / f"{frame:010d}"
        else:
            camera = calib.CAMERA_OF_SIDE[side]
            stem = data_root / folder / f"image_0{camera}" / "data" / f"{frame:010d}"
        paths.append(_resolve_ext(stem, img_ext))
    return paths
