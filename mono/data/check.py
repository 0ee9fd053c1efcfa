"""``mono check-data``: every file the configured splits need, checked, every problem reported.

Training checks only what is cheap before every fit (each file exists and is not empty, see
:meth:`KittiRawDataset.check_files`) and stops at the first problem. This tool goes through
all of them and lists each bad file once, with the first split line that needs it:

- missing or empty (0 bytes) files;
- image headers (PIL reads the header only) and each frame's size against the other frames of
  its drive and camera; with ``deep``, every image is decoded in full;
- LiDAR scans whose size is not a whole number of points; calibration files that do not parse.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mono.data import calib
from mono.data.calib import CalibrationError
from mono.data.errors import DataFormatError
from mono.data.images import image_header, read_colour
from mono.data.kitti import KittiRawDataset, NeededFile

LIDAR_POINT_BYTES = 16  # x, y, z, reflectance as float32
STAGES = ("train", "val")


class FileProblem(NamedTuple):
    """One bad file: its path and the full message (which names it and the split line)."""

    path: str
    message: str


class _Need(NamedTuple):
    needed: NeededFile
    dataset: KittiRawDataset
    order: int


def _first_needs(datasets: Iterable[KittiRawDataset]) -> dict[str, _Need]:
    """Each needed file once, with the first split line that needs it, in split order."""
    needs: dict[str, _Need] = {}
    for dataset in datasets:
        for needed in dataset.needed_files():
            path = os.path.normpath("/".join(needed.location))
            if path not in needs:
                needs[path] = _Need(needed, dataset, len(needs))
    return needs


def _file_problem(path: str, need: _Need, deep: bool) -> tuple[str | None, tuple | None]:
    """(problem or None, image size or None) of one file, without the 'needed by' part."""
    if not os.path.isfile(path):
        return "is missing", None
    size = os.path.getsize(path)
    if size == 0:
        return "is empty (0 bytes)", None
    kind = need.needed.kind
    try:
        if kind == "image":
            width, height, _ = image_header(path)
            if deep:
                read_colour(path)
            return None, (width, height)
        if kind == "dense":
            image_header(path)
        elif kind == "lidar":
            if size % LIDAR_POINT_BYTES:
                return (
                    f"holds {size} bytes, not a whole number of {LIDAR_POINT_BYTES}-byte points "
                    "(x, y, z, reflectance as float32)"
                ), None
            if deep and not np.isfinite(np.fromfile(path, dtype=np.float32)).all():
                return "holds non-finite coordinates", None
    except DataFormatError as err:
        return str(err).removeprefix(path).lstrip(), None
    return None, None


def _calibration_problems(datasets: Iterable[KittiRawDataset], bad: set[str]) -> list[str]:
    """Messages of the calibration files that do not parse (each named once); dates with a
    file in ``bad`` (already reported) are skipped."""
    messages: dict[str, str] = {}  # the error -> it with the first split line that needs it
    for dataset in datasets:
        cameras = {
            (dataset.date_dir(e), calib.CAMERA_OF_SIDE[e.side]): i
            for i, e in reversed(list(enumerate(dataset.entries)))
        }
        for (date, camera), i in sorted(cameras.items()):
            if any(os.path.dirname(path) == os.path.normpath(date) for path in bad):
                continue
            for read in (dataset._calibration, dataset._lidar_calibration):
                if read is dataset._lidar_calibration and dataset.depth_source != "lidar":
                    continue
                try:
                    read(date, camera)
                except (CalibrationError, FileNotFoundError) as err:
                    messages.setdefault(str(err), f"{err}; needed by {dataset.where(i)}")
    return list(messages.values())


def check_datasets(datasets: list[KittiRawDataset], deep: bool = False) -> tuple[list[str], int]:
    """Every problem of the files the datasets need, and how many files were checked.

    Each file is reported once, with the first split line that needs it. Frame sizes are
    compared per image folder (one drive and camera) with the size most of its frames have.

    Returns:
        (messages in split order, number of distinct files checked).
    """
    needs = _first_needs(datasets)
    found: list[tuple[int, str]] = []
    bad: set[str] = set()
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for path, need in needs.items():
        problem, size = _file_problem(path, need, deep)
        if problem is not None:
            found.append((need.order, f"{path} {problem}: {_needed_by(need)}"))
            bad.add(path)
        if size is not None:
            sizes.setdefault(os.path.dirname(path), {})[path] = size
    for folder, of_folder in sizes.items():
        usual, count = Counter(of_folder.values()).most_common(1)[0]
        for path, size in of_folder.items():
            if size != usual:
                found.append(
                    (
                        needs[path].order,
                        f"{path} is {size[0]}x{size[1]}, but {count} other frames of {folder} are "
                        f"{usual[0]}x{usual[1]}: {_needed_by(needs[path])}",
                    )
                )
    messages = [message for _, message in sorted(found)]
    return messages + _calibration_problems(datasets, bad), len(needs)


def _needed_by(need: _Need) -> str:
    return f"{need.needed.what} needed by {need.dataset.where(need.needed.index)}"


def _data_options(config: str | Path, overrides: dict) -> dict:
    from mono.config_files import load_config

    data = load_config(config).get("data") or {}
    data = dict(data.get("init_args", data))
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "root" not in data:
        raise ValueError(f"{config} sets no data.root; give it with --data.root")
    return data


def check_configured_data(
    config: str | Path, overrides: dict | None = None, deep: bool = False, log=print
) -> int:
    """Check the train and val splits of a config's ``data`` section; returns the problem count.

    Prints each split's ground-truth decision, every problem, and a summary line last.
    """
    from mono.data.datamodule import KittiDataModule  # the config's own reading of its options

    module = KittiDataModule(**_data_options(config, overrides or {}))
    datasets: dict[str, KittiRawDataset] = {}
    messages = []
    for stage in STAGES:
        try:
            datasets[stage] = module.build_dataset(stage)
            log(datasets[stage].ground_truth.describe(stage))
        except (ValueError, FileNotFoundError) as err:  # no split, a malformed split line
            messages.append(f"{stage}: {err}")
    problems, files = check_datasets(list(datasets.values()), deep)
    messages += problems
    for message in messages:
        log(message)
    splits = " and ".join(f"{s} ({len(d)} samples)" for s, d in datasets.items())
    what = f"{files} files needed by {splits or 'no split'}"
    checked = "decoded" if deep else "headers read"
    if messages:
        log(f"check-data: {len(messages)} problems in {what} ({checked})")
    else:
        log(f"check-data: all {what} are fine ({checked})")
    return len(messages)
