"""KITTI test splits: their lines, their image paths and their exported ground truth.

A test split is a shipped name (``eigen``, ``eigen_benchmark``, ``benchmark``) or a directory
holding a ``test_files.txt`` (absolute, relative to the working directory, or relative to the
data root), such as ``<root>/splits`` of the synthetic drives.

Ground truth is exported once per split into an ``.npz`` (key ``data``: an object array of
per-image float32 depth maps in metres, 0 = no measurement), as Monodepth2's
``export_gt_depth.py`` does. It comes in three kinds (:data:`GT_KINDS`): ``velodyne`` (LiDAR,
the scanner's forward coordinate: Monodepth2's Eigen ground truth), ``camera`` (LiDAR, the
camera's z: what a renderer's depth buffer holds, the default for split directories) and
``dense`` (the depth benchmark's annotated PNGs). The package directory may be read-only, so
the default location is ``<data_root>/gt_depths_<split>.npz`` for shipped splits and
``<split dir>/gt_depths_<kind>.npz`` for split directories (:func:`default_gt_path`).
"""

from __future__ import annotations

import pickle
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data import calib
from mono.data.errors import DataFormatError
from mono.data.splits import parse_split_line, read_split_text
from mono.output_files import check_writable_file, writing

SPLITS_DIR = Path(__file__).resolve().parent.parent / "data" / "splits"
GT_SPLITS = ("eigen", "eigen_benchmark")
IMAGE_SPLITS = ("eigen", "eigen_benchmark", "benchmark")
GT_KINDS = ("velodyne", "camera", "dense")
# Shipped splits have one reference kind; a split directory defaults to camera depth.
DEFAULT_GT_KIND = {"eigen": "velodyne", "eigen_benchmark": "dense"}
DIRECTORY_GT_KIND = "camera"
# KITTI depth-prediction benchmark test images (the devkit's depth_selection archive).
BENCHMARK_IMAGE_DIR = Path("depth_selection") / "test_depth_prediction_anonymous" / "image"


def is_shipped(split: str) -> bool:
    """Whether ``split`` names one of the test splits shipped with mono."""
    return split in IMAGE_SPLITS


def split_file(
    split: str, data_root: str | Path | None = None, choices: tuple[str, ...] = IMAGE_SPLITS
) -> Path:
    """``test_files.txt`` of a shipped split (one of ``choices``) or of a split directory.

    Args:
        split: a name from ``choices``, or a directory holding ``test_files.txt``; a relative
            directory is looked up in the working directory, then under ``data_root``.
        data_root: dataset root for that second look-up.
        choices: the shipped names this caller accepts (e.g. :data:`GT_SPLITS` for export).

    Raises:
        ValueError: neither one of ``choices`` nor a directory with ``test_files.txt``; the
            message lists the choices.
    """
    if split in choices:
        return SPLITS_DIR / split / "test_files.txt"
    if not is_shipped(split):
        candidates = [Path(split)]
        if data_root is not None and not Path(split).is_absolute():
            candidates.append(Path(data_root) / split)
        for directory in candidates:
            if (directory / "test_files.txt").is_file():
                return directory / "test_files.txt"
            if directory.is_dir():
                raise ValueError(f"split directory {directory} has no test_files.txt")
    raise ValueError(
        f"unknown split {split!r}: choose one of {', '.join(choices)}, "
        "or give a directory holding test_files.txt"
    )


def test_split_lines(split: str, data_root: str | Path | None = None) -> list[str]:
    """Non-empty lines of a test split, e.g. ``"2011_09_26/2011_09_26_drive_0002_sync 69 l"``
    (the names of the per-image results; :func:`parse_line` reads each)."""
    text = read_split_text(split_file(split, data_root))
    return [line for line in text.splitlines() if line.strip()]


def resolve_gt_kind(split: str, kind: str | None = None) -> str:
    """The ground-truth kind of a split: ``kind``, or the split's default when None.

    Raises:
        ValueError: unknown kind, or one the shipped split does not have (eigen has no dense
            maps for all its frames; eigen_benchmark is defined by its dense maps).
    """
    default = DEFAULT_GT_KIND.get(split, DIRECTORY_GT_KIND)
    if kind is None:
        return default
    if kind not in GT_KINDS:
        raise ValueError(f"ground-truth kind {kind!r}: choose one of {', '.join(GT_KINDS)}")
    if split == "eigen" and kind == "dense":
        raise ValueError(
            "the eigen split's ground truth is LiDAR; its dense maps are the eigen_benchmark split"
        )
    if split == "eigen_benchmark" and kind != "dense":
        raise ValueError("the eigen_benchmark split's ground truth is the dense benchmark maps")
    return kind


def parse_line(line: str, split: str, number: int = 0) -> tuple[str, int, str]:
    """``(folder, frame, side)`` of line ``number`` of a test split, read by the training
    reader's parser (:func:`mono.data.splits.parse_split_line`); only the benchmark's ``image N``
    lines may leave the side out (it is then "l").

    Raises:
        DataFormatError: a malformed line, as ``<split>:<number>: expected 'folder frame side'``.
    """
    entry = parse_split_line(line, split, number, side_optional=split == "benchmark")
    return entry.folder, entry.frame, entry.side


def default_gt_path(data_root: str | Path, split: str, kind: str | None = None) -> Path:
    """Where :func:`export_gt` writes by default.

    Shipped splits: ``<data_root>/gt_depths_<split>.npz`` (``gt_depths_<split>_<kind>.npz``
    for a kind other than the split's reference one). Split directories:
    ``<split dir>/gt_depths_<kind>.npz``.
    """
    kind = resolve_gt_kind(split, kind)
    if split in GT_SPLITS:
        suffix = "" if kind == DEFAULT_GT_KIND[split] else f"_{kind}"
        return Path(data_root) / f"gt_depths_{split}{suffix}.npz"
    return split_file(split, data_root, GT_SPLITS).parent / f"gt_depths_{kind}.npz"


def export_command(
    data_root: str | Path | None, split: str, kind: str | None = None, out: str | Path | None = None
) -> str:
    """The ``mono export-gt`` command line that writes this split's ground truth to ``out``."""
    kind = resolve_gt_kind(split, kind)
    words = ["mono export-gt", f"--data {data_root if data_root is not None else 'ROOT'}"]
    words.append(f"--split {split}")
    default = DEFAULT_GT_KIND.get(split, DIRECTORY_GT_KIND)
    if kind == "dense" and default != "dense":
        words.append("--gt-source dense")
    elif kind != default:
        words.append(f"--depth {kind}")
    if out is not None:
        try:
            is_default = data_root is not None and Path(out) == default_gt_path(
                data_root, split, kind
            )
        except ValueError:
            is_default = False
        if not is_default:
            words.append(f"--out {out}")
    return " ".join(words)


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


def _gt_source(data_root: Path, kind: str, folder: str, frame: int, side: str) -> Path:
    if kind != "dense":
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
    kind: str | None = None,
) -> Path:
    """Export a test split's ground-truth depth maps to an ``.npz`` (Monodepth2's layout).

    velodyne / camera: projected raw LiDAR (:func:`velodyne_depth_map`, or
    :func:`mono.data.calib.lidar_depth` for camera z), camera 2 for side "l", 3 for "r".
    dense: the depth benchmark's annotated maps,
    ``<data_root>/<folder>/proj_depth/groundtruth/image_0X/<frame:010d>.png`` (uint16 / 256).

    Args:
        data_root: KITTI raw root (date folders with calibration files).
        split: "eigen", "eigen_benchmark" or a split directory (see :func:`split_file`).
        out_path: output file; default :func:`default_gt_path`.
        log: progress sink (a line roughly every 10 %), None for silence.
        lines: split lines to export instead of the split's ``test_files.txt``.
        kind: "velodyne", "camera" or "dense"; None = the split's default
            (:func:`resolve_gt_kind`: velodyne for eigen, dense for eigen_benchmark, camera
            for a split directory).

    Returns:
        The written path.

    Raises:
        ValueError: unknown split or kind.
        FileNotFoundError: a scan or depth PNG is missing (names the file and the split line).
    """
    data_root = Path(data_root)
    path = split_file(split, data_root, GT_SPLITS)
    kind = resolve_gt_kind(split, kind)
    out = Path(out_path) if out_path is not None else default_gt_path(data_root, split, kind)
    lines = list(test_split_lines(split, data_root) if lines is None else lines)
    check_writable_file(out, "ground-truth file")  # before minutes of projecting scans
    step = max(1, len(lines) // 10)
    depths = np.empty(len(lines), dtype=object)
    for i, line in enumerate(lines):
        folder, frame, side = parse_line(line, split, i + 1)
        source = _gt_source(data_root, kind, folder, frame, side)
        if not source.is_file():
            raise FileNotFoundError(f"{source} not found (line {i + 1} of {path}: {line!r})")
        if kind == "dense":
            depths[i] = read_depth_png(source)
        else:
            date_dir = data_root / folder.split("/")[0]
            camera = calib.CAMERA_OF_SIDE[side]
            depths[i] = (
                velodyne_depth_map(date_dir, source, camera)
                if kind == "velodyne"
                else calib.lidar_depth(date_dir, source, camera, depth="camera")
            )
        if log is not None and ((i + 1) % step == 0 or i + 1 == len(lines)):
            log(f"export-gt {split} ({kind}): {i + 1}/{len(lines)}")
    with writing(out, "ground-truth file"):
        np.savez_compressed(out, data=depths)
    if log is not None:
        log(f"saved {len(lines)} ground-truth maps ({kind}) to {out}")
    return out


def load_gt(
    path: str | Path,
    data_root: str | Path | None = None,
    split: str = "eigen",
    kind: str | None = None,
) -> list:
    """Ground-truth depth maps written by :func:`export_gt` (or by Monodepth2's exporter).

    Raises:
        FileNotFoundError: with the ``mono export-gt`` command that creates the file.
    """
    path = Path(path)
    if not path.is_file():
        command = export_command(data_root, split, kind, path)
        raise FileNotFoundError(f"ground truth not found at {path}: run `{command}` first")
    try:
        with np.load(path, allow_pickle=True, encoding="latin1") as npz:
            if not hasattr(npz, "files") or "data" not in npz:
                raise ValueError(
                    f"{path}: not a ground-truth file (no 'data' array; see export-gt)"
                )
            data = npz["data"]
        return [np.asarray(d, dtype=np.float32) for d in data]
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError) as err:
        command = export_command(data_root, split, kind, path)
        raise DataFormatError(
            f"{path}: not a readable ground-truth file ({type(err).__name__}: {err}); "
            f"re-export it with `{command}`"
        ) from None


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

    eigen / eigen_benchmark / split directories: ``<root>/<folder>/image_0{2,3}/data/
    <frame:010d>.<ext>`` (camera 2 for side "l", 3 for "r"). benchmark: ``<root>/depth_selection/
    test_depth_prediction_anonymous/image/<N:010d>.png``.

    Args:
        img_ext: "png", "jpg" or "auto" (png if it exists, else jpg; decided per file).
        lines: split lines to use instead of the split's ``test_files.txt``.
    """
    data_root = Path(data_root)
    paths = []
    lines = test_split_lines(split, data_root) if lines is None else lines
    for number, line in enumerate(lines, start=1):
        folder, frame, side = parse_line(line, split, number)
        if split == "benchmark":
            stem = data_root / BENCHMARK_IMAGE_DIR / f"{frame:010d}"
        else:
            camera = calib.CAMERA_OF_SIDE[side]
            stem = data_root / folder / f"image_0{camera}" / "data" / f"{frame:010d}"
        paths.append(_resolve_ext(stem, img_ext))
    return paths
