"""KITTI raw reader: decodes the frames of one split entry; resizing and colour jitter come later.

Layout (the KITTI raw archives unpacked under ``root``)::

    root/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    root/<date>/<date>_drive_NNNN_sync/image_02|image_03/data/%010d.png|jpg
    root/<date>/<date>_drive_NNNN_sync/velodyne_points/data/%010d.bin
    root/<date>/<date>_drive_NNNN_sync/proj_depth/groundtruth/image_02|image_03/%010d.png

Workers only decode files, flip and draw augmentation parameters; everything per-pixel that is
not a flip runs batched on the training device (:func:`mono.data.augment.prepare_batch`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
from PIL import Image

from mono.data import calib
from mono.data.errors import DataFormatError
from mono.data.images import DECODE_ERRORS, GrayscaleNotice, ImageDecodeError, read_colour
from mono.data.sample import Frames, GroundTruth, SampleDataset
from mono.data.splits import SplitEntry
from mono.frame_ids import STEREO, parse_frame_ids

# Choice options as Literal types, so that the command line rejects a typo while parsing.
ImgExt = Literal["auto", "png", "jpg"]
IntrinsicsSource = Literal["monodepth2", "calib", "learned"]
DepthMode = Literal["none", "lidar", "dense", "auto"]
StereoBaseline = float | Literal["calib"]  # metres, or each date's calibration
IMG_EXTS: tuple[str, ...] = get_args(ImgExt)
INTRINSICS: tuple[str, ...] = get_args(IntrinsicsSource)
DEPTH_MODES: tuple[str, ...] = get_args(DepthMode)
OTHER_SIDE = {"l": "r", "r": "l"}


# What a missing ground-truth file is called in messages.
GROUND_TRUTH_FILES = {"lidar": "LiDAR scans", "dense": "dense depth maps"}


class NeededFile(NamedTuple):
    """A file a split needs: ``location`` (folder, name); ``what`` it serves, for messages;
    ``kind`` image | lidar | dense | calibration; ``index`` of the entry that needs it."""

    location: tuple[str, str]
    what: str
    kind: str
    index: int


def check_options(img_ext: str, intrinsics: str, depth: str, stereo_baseline, prefix: str = ""):
    """Raise a ValueError naming the first invalid reader option (``prefix`` + its name)."""
    for name, value, choices in (
        ("img_ext", img_ext, IMG_EXTS),
        ("intrinsics", intrinsics, INTRINSICS),
        ("depth", depth, DEPTH_MODES),
    ):
        if value not in choices:
            raise ValueError(f"{prefix}{name}='{value}': choose one of {list(choices)}")
    positive = isinstance(stereo_baseline, (int, float)) and stereo_baseline > 0
    if stereo_baseline != "calib" and not positive:
        raise ValueError(
            f"{prefix}stereo_baseline={stereo_baseline!r}: a positive number (m) or 'calib'"
        )


# Files are located as (directory, name) strings: pathlib costs ~10 us per join, which adds up to
# seconds when check_files() resolves every frame of a 40k-line split.
def image_dir(root: str, folder: str, side: str) -> str:
    return f"{root}/{folder}/image_0{calib.CAMERA_OF_SIDE[side]}/data"


def velodyne_location(root: str, folder: str, frame: int) -> tuple[str, str]:
    return f"{root}/{folder}/velodyne_points/data", f"{frame:010d}.bin"


def dense_depth_location(root: str, folder: str, side: str, frame: int) -> tuple[str, str]:
    camera = calib.CAMERA_OF_SIDE[side]
    return f"{root}/{folder}/proj_depth/groundtruth/image_0{camera}", f"{frame:010d}.png"


def load_dense_depth(path: Path) -> np.ndarray:
    """(H, W) float32 metres from a KITTI depth-benchmark PNG (uint16 / 256, 0 = invalid).

    Raises:
        ImageDecodeError: the file cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            return np.asarray(img, dtype=np.float32) / 256.0
    except DECODE_ERRORS as err:
        raise ImageDecodeError(f"{path} cannot be decoded ({type(err).__name__}: {err})") from None


def worker_init_fn(worker_id: int) -> None:
    """One torch thread per DataLoader worker (workers run in parallel already), and no
    reaction to SIGTERM/SIGINT: clusters and Ctrl-C signal the whole process group, and only
    the main process may act on them (a worker that dies first takes the run down unsaved)."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Listings:
    """Directory listings cached per folder: one ``os.listdir`` instead of a stat per file."""

    def __init__(self) -> None:
        self._names: dict[str, set[str]] = {}

    def names(self, directory: str) -> set[str]:
        if directory not in self._names:
            try:
                self._names[directory] = set(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                self._names[directory] = set()
        return self._names[directory]

    def exists(self, location: tuple[str, str]) -> bool:
        return location[1] in self.names(location[0])


class KittiRawDataset(SampleDataset):
    """Samples of a KITTI raw split at native resolution.

    Args:
        root: dataset root (see the module docstring for the layout).
        entries: split entries (:func:`mono.data.splits.read_split`).
        frame_ids: ``"0"`` first, then integer offsets within the drive and/or ``"s"`` (the
            other camera of the stereo pair at the same time).
        train: draw a horizontal flip (p = 0.5) and colour-jitter factors (p = 0.5) per sample.
        img_ext: ``"png"``, ``"jpg"`` or ``"auto"`` (per image folder: png if it has any).
        intrinsics: ``"monodepth2"`` (the fixed average K of Monodepth2) or ``"calib"``
            (``P_rect`` of the date's calibration).
        stereo_baseline: metres between the cameras, or ``"calib"`` for the calibrated one
            (~0.54 m); Monodepth2 trains with 0.1 (see ``calib.STEREO_SCALE_FACTOR``).
        depth: ground truth: ``"none"``, ``"lidar"`` (projected Velodyne), ``"dense"`` (depth
            benchmark PNGs) or ``"auto"`` (dense if every entry has it, else lidar if every entry
            has a scan, else none; decided once per dataset).
        seed: base seed of the augmentation; a sample's draw depends on (seed, epoch, index).
        split_file: the split file the entries come from, named in error messages.
    """

    def __init__(
        self,
        root: str | Path,
        entries: list[SplitEntry],
        frame_ids=("0", "-1", "1"),
        train: bool = False,
        img_ext: str = "auto",
        intrinsics: str = "monodepth2",
        stereo_baseline: float | str = calib.MONODEPTH2_BASELINE,
        depth: str = "none",
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> None:
        check_options(img_ext, intrinsics, depth, stereo_baseline)
        super().__init__(parse_frame_ids(frame_ids), train, seed)
        self.root = Path(root)
        self.entries = list(entries)
        self.img_ext = img_ext
        self.intrinsics = intrinsics
        self.stereo_baseline = stereo_baseline
        self.depth = depth
        self.split_file = split_file
        self._ground_truth: GroundTruth | None = None
        self._root = str(self.root)
        self._ext: dict[str, str] = {}
        self._calib_cache: dict[tuple, object] = {}
        self._grayscale = GrayscaleNotice(str(split_file or "this split"))

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ file resolution
    def date_dir(self, entry: SplitEntry) -> str:
        return f"{self._root}/{os.path.dirname(entry.folder)}"

    def frame_source(self, entry: SplitEntry, frame_id: str) -> tuple[str, int]:
        """(side, frame) whose image serves ``frame_id`` of ``entry``."""
        if frame_id == STEREO:
            return OTHER_SIDE[entry.side], entry.frame
        return entry.side, entry.frame + int(frame_id)

    def _image_ext(self, directory: str, listings: _Listings | None) -> str:
        if self.img_ext != "auto":
            return self.img_ext
        if directory not in self._ext:
            if listings is None:  # e.g. a worker of a dataset never checked
                listings = _Listings()
            names = listings.names(directory)
            has_png = any(n.endswith(".png") for n in names)
            self._ext[directory] = "png" if has_png or not names else "jpg"
        return self._ext[directory]

    def _image_location(self, entry: SplitEntry, frame_id: str, listings=None) -> tuple[str, str]:
        side, frame = self.frame_source(entry, frame_id)
        directory = image_dir(self._root, entry.folder, side)
        return directory, f"{frame:010d}.{self._image_ext(directory, listings)}"

    def image_file(self, entry: SplitEntry, frame_id: str) -> Path:
        """Path of the image that serves ``frame_id`` of ``entry``."""
        return Path(*self._image_location(entry, frame_id))

    def _depth_location(self, entry: SplitEntry, source: str) -> tuple[str, str]:
        if source == "lidar":
            return velodyne_location(self._root, entry.folder, entry.frame)
        return dense_depth_location(self._root, entry.folder, entry.side, entry.frame)

    def where(self, index: int) -> str:
        """The split line of an entry, for messages: ``<split file>:<line> ('<line text>')``."""
        entry = self.entries[index]
        place = f"{self.split_file or 'split'}:{entry.line}" if entry.line else f"entry {index}"
        return f"{place} ('{entry.folder} {entry.frame} {entry.side}')"

    def _calib_files(self, depth_source: str) -> tuple[str, ...]:
        """Calibration files each date folder must hold."""
        lidar = depth_source == "lidar"
        cam = lidar or self.intrinsics == "calib" or self.stereo_baseline == "calib"
        return (calib.CAM_TO_CAM,) * cam + (calib.VELO_TO_CAM,) * lidar

    def _ground_truth_gap(self, source: str, listings: _Listings) -> tuple[int, str | None]:
        """(samples whose file exists, why ``source`` cannot serve every sample or None)."""
        missing = [
            i
            for i, e in enumerate(self.entries)
            if not listings.exists(self._depth_location(e, source))
        ]
        have = len(self.entries) - len(missing)
        for date in sorted({self.date_dir(e) for e in self.entries}):
            for name in self._calib_files(source):
                if not os.path.isfile(f"{date}/{name}"):
                    return have, f"{name} missing in {os.path.normpath(date)}"
        if not missing:
            return have, None
        i = missing[0]
        path = os.path.normpath("/".join(self._depth_location(self.entries[i], source)))
        return have, (
            f"{GROUND_TRUTH_FILES[source]} for {have} of {len(self.entries)} samples: {path} is "
            f"missing, needed by {self.where(i)}"
        )

    def _decide_ground_truth(self, listings: _Listings) -> GroundTruth:
        n = len(self.entries)
        if self.depth == "none":
            return GroundTruth("none", "data.depth='none'")
        if self.depth != "auto":  # check_files() names each missing file
            return GroundTruth(self.depth, f"{n} of {n} samples")
        reasons = []
        for source in ("dense", "lidar"):
            have, reason = self._ground_truth_gap(source, listings)
            if reason is None:
                return GroundTruth(source, f"{n} of {n} samples")
            if have or source == "lidar":  # no dense map at all is the usual KITTI raw case
                reasons.append(reason)
        return GroundTruth("none", "; ".join(reasons))

    @property
    def ground_truth(self) -> GroundTruth:
        """The ground truth loaded for this split and why (``depth="auto"`` decides once)."""
        if self._ground_truth is None:
            self._ground_truth = self._decide_ground_truth(_Listings())
        return self._ground_truth

    @property
    def depth_source(self) -> str:
        """The ground truth actually loaded: ``"none"``, ``"lidar"`` or ``"dense"``."""
        return self.ground_truth.source

    def needed_files(self, listings: _Listings | None = None) -> Iterator[NeededFile]:
        """Every file the split needs, entry by entry (a file shared by entries comes again).

        The images of all frame ids, the ground truth loaded (decides ``depth="auto"``) and, at
        the first entry of each date and camera, the calibration files K, the baseline or LiDAR
        ground truth come from.
        """
        listings = listings or _Listings()
        if self._ground_truth is None:
            self._ground_truth = self._decide_ground_truth(listings)
        source = self._ground_truth.source
        cameras: set[tuple[str, int]] = set()
        for i, entry in enumerate(self.entries):
            for f in self.frame_ids:
                location = self._image_location(entry, f, listings)
                yield NeededFile(location, f"frame '{f}'", "image", i)
            if source != "none":
                location = self._depth_location(entry, source)
                yield NeededFile(location, f"{source} ground truth", source, i)
            camera_key = (self.date_dir(entry), calib.CAMERA_OF_SIDE[entry.side])
            if camera_key not in cameras:
                cameras.add(camera_key)
                for name in self._calib_files(source):
                    yield NeededFile((camera_key[0], name), "calibration", "calibration", i)

    def check_files(self) -> None:
        """Verify that every file the split needs exists and is not empty, before training.

        See :meth:`needed_files` for what is needed; decides ``depth="auto"``. Folder listings
        are cached, so 40k entries take a fraction of a second; ``mono check-data`` also reads
        every image header (and, with ``--deep``, decodes every image).

        Raises:
            FileNotFoundError: names the first missing file, the split-file line that needs it
                and how many further files are missing.
            DataFormatError: the split is empty; a needed file is empty (0 bytes), named as a
                missing one is.
            mono.data.calib.CalibrationError: a needed calibration file is malformed.
        """
        if not self.entries:
            raise DataFormatError(f"split {self.split_file or ''} has no entries")
        listings = _Listings()
        missing: list[NeededFile] = []
        present: dict[str, NeededFile] = {}
        cameras: set[tuple[str, int]] = set()
        for needed in self.needed_files(listings):
            if not listings.exists(needed.location):
                missing.append(needed)
            else:
                present.setdefault("/".join(needed.location), needed)
            entry = self.entries[needed.index]
            cameras.add((self.date_dir(entry), calib.CAMERA_OF_SIDE[entry.side]))
        if missing:
            first = missing[0]
            either = " (or .jpg)" if first.kind == "image" and self.img_ext == "auto" else ""
            raise FileNotFoundError(
                f"{os.path.normpath('/'.join(first.location))} is missing: {first.what}{either} "
                "needed by "
                f"{self.where(first.index)} under root {self.root}; {len(missing) - 1} further "
                "files are missing"
            )
        empty = [(path, n) for path, n in present.items() if os.path.getsize(path) == 0]
        if empty:
            path, first = empty[0]
            raise DataFormatError(
                f"{os.path.normpath(path)} is empty (0 bytes): {first.what} needed by "
                f"{self.where(first.index)}; {len(empty) - 1} further files are empty"
            )
        for date, camera in sorted(cameras):  # parse now: a malformed file fails before training
            self._calibration(date, camera)
            if self.depth_source == "lidar":
                self._lidar_calibration(date, camera)

    # ------------------------------------------------------------------ per-sample values
    def _calibration(self, date: str, camera: int) -> tuple[np.ndarray, float]:
        """(normalised K, baseline) of a camera, cached per date."""
        key = (date, camera)
        if key not in self._calib_cache:
            if self.intrinsics == "calib":
                K = calib.normalised_intrinsics(date, camera)
            else:
                K = calib.MONODEPTH2_K.copy()
            if self.stereo_baseline == "calib":
                baseline = calib.stereo_baseline(date)
            else:
                baseline = float(self.stereo_baseline)
            self._calib_cache[key] = (K, baseline)
        return self._calib_cache[key]

    def _lidar_calibration(self, date: str, camera: int):
        """(P_rect, image size, Velodyne -> rectified camera 0) of a camera, cached per date."""
        key = ("lidar", date, camera)
        if key not in self._calib_cache:
            P, size = calib.projection_matrix(date, camera)
            self._calib_cache[key] = (P, size, calib.velo_to_cam_rect(date))
        return self._calib_cache[key]

    def _load_depth(self, index: int) -> np.ndarray | None:
        entry = self.entries[index]
        source = self.depth_source
        if source == "none":
            return None
        path = "/".join(self._depth_location(entry, source))
        if source == "dense":
            try:
                return load_dense_depth(path)
            except ImageDecodeError as err:
                raise ImageDecodeError(f"{err}: ground truth of {self.where(index)}") from None
        camera = calib.CAMERA_OF_SIDE[entry.side]
        P, size, velo_to_rect = self._lidar_calibration(self.date_dir(entry), camera)
        return calib.project_velodyne(calib.load_velodyne(path), velo_to_rect, P, size)

    def read(self, index: int) -> Frames:
        """The images of every frame id, K, the stereo transform and ground truth of an entry."""
        entry = self.entries[index]
        paths = [self.image_file(entry, f) for f in self.frame_ids]
        frames = []
        for f, path in zip(self.frame_ids, paths, strict=True):
            try:
                frames.append(read_colour(path, self._grayscale))
            except ImageDecodeError as err:  # a worker's traceback would not say which sample
                raise ImageDecodeError(f"{err}: frame '{f}' of {self.where(index)}") from None
        if len({f.shape for f in frames}) > 1:
            sizes = {str(p): f.shape[:2] for p, f in zip(paths, frames, strict=True)}
            raise ValueError(f"frames of {self.where(index)} differ in size: {sizes}")
        K, baseline = self._calibration(self.date_dir(entry), calib.CAMERA_OF_SIDE[entry.side])
        T_stereo = np.eye(4, dtype=np.float32)
        # The right camera sits +baseline along x of the left one: X_right = X_left - baseline.
        T_stereo[0, 3] = (-1.0 if entry.side == "l" else 1.0) * baseline
        return Frames(np.stack(frames), K, T_stereo, self._load_depth(index))
