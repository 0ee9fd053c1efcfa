"""Datasets by name: ``data.dataset`` picks the layout module that reads ``data.root``.

Each entry checks the options of its layout when the DataModule is built (before any file is
read) and builds the dataset of a stage; the DataModule never branches on a name.

* ``kitti_raw``: KITTI raw (``<date>/<drive>/image_02/data``), :mod:`mono.data.kitti`.
* ``kitti_odom``: KITTI odometry (``sequences/NN/image_2``), :mod:`mono.data.kitti_odom`.
* ``video``: folders of frames and video files, :mod:`mono.data.video`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from mono.data.sample import SampleDataset
from mono.data.splits import read_split, split_directory

DatasetName = Literal["kitti_raw", "video", "kitti_odom"]
DATASET_NAMES: tuple[str, ...] = get_args(DatasetName)
# Options that only the video layout reads, with the value that means "unused".
VIDEO_ONLY = {"frame_stride": 1, "static_threshold": None}


@dataclass(frozen=True)
class DatasetEntry:
    """How one layout checks its options and builds the dataset of a stage.

    Attributes:
        check: ``(options, root)`` -> None; raises ValueError naming the ``data.`` option.
        build: ``(options, root, stage, split_file)`` -> an unchecked dataset; ``options`` are
            the DataModule's hyper-parameters, ``split_file(stage)`` resolves a split file.
    """

    check: Callable[[Mapping, Path], None]
    build: Callable[[Mapping, Path, str, Callable[[str], Path]], SampleDataset]


def _check_kitti(options: Mapping, root: Path) -> None:
    if options.get("intrinsics") == "learned":
        raise ValueError(
            f"data.intrinsics='learned' applies to data.dataset=video only (data.dataset="
            f"{options['dataset']} reads its calibration; to learn the camera anyway, keep "
            "data.intrinsics and set model.learn_intrinsics true)"
        )
    for name, unused in VIDEO_ONLY.items():
        if options.get(name, unused) != unused:
            raise ValueError(
                f"data.{name}={options[name]!r} applies to data.dataset=video only "
                f"(data.dataset={options['dataset']})"
            )
    if options.get("synthesize") is None:  # with synthesize, the split may be written later
        for name in ("split", "val_split"):
            if options.get(name) is not None:
                try:
                    split_directory(options[name], root)
                except ValueError as error:
                    raise ValueError(f"data.{name}: {error}") from None


def _kitti_entries(options: Mapping, stage: str, split_file: Callable[[str], Path]):
    path = split_file(stage)
    entries = read_split(path)
    if stage == "train" and options.get("limit_train_samples") is not None:
        entries = entries[: options["limit_train_samples"]]
    return path, entries


def _kitti_kwargs(options: Mapping, stage: str, path: Path) -> dict:
    return dict(
        frame_ids=("0",) if stage == "test" else options["frame_ids"],
        train=stage == "train",
        img_ext=options["img_ext"],
        intrinsics=options["intrinsics"],
        stereo_baseline=options["stereo_baseline"],
        depth=options["depth"],
        seed=options["seed"],
        split_file=path,
    )


def _build_kitti_raw(options, root, stage, split_file) -> SampleDataset:
    from mono.data.kitti import KittiRawDataset

    path, entries = _kitti_entries(options, stage, split_file)
    return KittiRawDataset(root, entries, **_kitti_kwargs(options, stage, path))


def _check_kitti_odom(options: Mapping, root: Path) -> None:
    from mono.data.kitti_odom import check_odom_options

    _check_kitti(options, root)
    check_odom_options(options["depth"])


def _build_kitti_odom(options, root, stage, split_file) -> SampleDataset:
    from mono.data.kitti_odom import KittiOdomDataset

    path, entries = _kitti_entries(options, stage, split_file)
    return KittiOdomDataset(root, entries, **_kitti_kwargs(options, stage, path))


def _check_video(options: Mapping, root: Path) -> None:
    from mono.data.video import check_video_options

    check_video_options(options)


def _build_video(options, root, stage, split_file) -> SampleDataset:
    from mono.data.video import build_video_dataset

    return build_video_dataset(options, root, stage)


DATASETS: dict[str, DatasetEntry] = {
    "kitti_raw": DatasetEntry(_check_kitti, _build_kitti_raw),
    "kitti_odom": DatasetEntry(_check_kitti_odom, _build_kitti_odom),
    "video": DatasetEntry(_check_video, _build_video),
}


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of ``data.dataset``.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in DATASETS:
        raise ValueError(f"data.dataset='{name}': choose one of {list(DATASETS)}")
    return DATASETS[name]
