"""KITTI odometry reader (``data.dataset: kitti_odom``), as Monodepth2's ``--dataset kitti_odom``.

Layout (the odometry colour archive, its calibration and the ground-truth poses under ``root``)::

    root/sequences/NN/image_2|image_3/%06d.png|jpg
    root/sequences/NN/calib.txt            P0..P3 (3x4, KITTI's 1-based pixels), Tr
    root/poses/NN.txt                      camera -> world, a row-major 3x4 per line (00-10)

Split files (the shipped ``odom`` split, as Monodepth2's ``splits/odom``) hold
``<sequence> <frame> <side>`` lines, e.g. ``9 0 l``. The reader is :class:`KittiRawDataset`
with these paths: the same file checks, augmentation and stereo frame; there is no ground-truth
depth. Pose evaluation (:mod:`mono.evaluation.pose`) reads sequences through the same paths.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from mono.data import calib
from mono.data.errors import DataFormatError, read_text_file
from mono.data.kitti import GroundTruth, KittiRawDataset, _Listings
from mono.data.splits import SplitEntry

CALIB_FILE = "calib.txt"


class OdometryLayoutError(ValueError):
    """A split line or file does not fit the KITTI odometry layout."""


def check_odom_options(depth: str) -> None:
    """Raise a ValueError for a ground-truth mode the odometry layout cannot serve."""
    if depth not in ("none", "auto"):
        raise ValueError(
            f"data.depth='{depth}': data.dataset=kitti_odom has no ground-truth depth "
            "(use 'none' or 'auto')"
        )


def sequence_dir(root: str | Path, sequence: int) -> str:
    """``<root>/sequences/<NN>``."""
    return f"{root}/sequences/{sequence:02d}"


def image_dir(root: str | Path, sequence: int, camera: int = 2) -> str:
    """``<root>/sequences/<NN>/image_<camera>`` (2 = left colour, 3 = right colour)."""
    return f"{sequence_dir(root, sequence)}/image_{camera}"


def image_name(frame: int, ext: str) -> str:
    return f"{frame:06d}.{ext}"


def poses_file(root: str | Path, sequence: int) -> Path:
    """``<root>/poses/<NN>.txt``: ground-truth poses of sequences 00-10."""
    return Path(root) / "poses" / f"{sequence:02d}.txt"


def read_poses(path: str | Path) -> np.ndarray:
    """KITTI odometry poses file (a row-major 3 x 4 ``camera-t -> world`` per line): (N, 4, 4).

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: not UTF-8 text, or a line without 12 finite numbers (file:line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"odometry poses not found: {path}")
    poses = []
    for i, line in enumerate(read_text_file(path).splitlines()):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 12 or not np.isfinite(values).all():
            raise DataFormatError(
                f"{path}:{i + 1}: expected 12 finite numbers (a 3 x 4 pose), got {line!r}"
            )
        pose = np.eye(4)
        pose[:3] = np.reshape(values, (3, 4))
        poses.append(pose)
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


@lru_cache(maxsize=64)
def projection(sequence_path: str, camera: int) -> np.ndarray:
    """``P<camera>`` (3, 4) of a sequence's ``calib.txt``.

    Raises:
        mono.data.calib.CalibrationError: the file or entry is missing or malformed.
    """
    path = Path(sequence_path) / CALIB_FILE
    values = calib.read_calib_file(path).get(f"P{camera}")
    if values is None or values.size != 12 or not np.isfinite(values).all():
        raise calib.CalibrationError(f"{path}: missing or malformed entry 'P{camera}' (12 numbers)")
    P = values.reshape(3, 4)
    if not (P[0, 0] > 0 and P[1, 1] > 0):
        raise calib.CalibrationError(f"{path}: entry 'P{camera}' has a focal length <= 0")
    return P


class KittiOdomDataset(KittiRawDataset):
    """Samples of a KITTI odometry split; options as :class:`KittiRawDataset`.

    ``intrinsics="calib"`` normalises ``P2`` / ``P3`` of the sequence's ``calib.txt`` by the
    size of its images (the file gives no size); ``stereo_baseline="calib"`` is the distance
    of cameras 2 and 3 there (~0.54 m). ``depth`` must be ``"none"`` or ``"auto"``.
    """

    def __init__(self, root, entries: list[SplitEntry], **kwargs) -> None:
        check_odom_options(kwargs.get("depth", "none"))
        super().__init__(root, entries, **kwargs)
        self._ground_truth = GroundTruth("none", "the odometry layout has no depth")

    def sequence(self, entry: SplitEntry) -> int:
        """The sequence number of a split entry (its ``folder`` field)."""
        try:
            return int(entry.folder)
        except ValueError:
            raise OdometryLayoutError(
                f"{self.split_file or 'split'}:{entry.line}: '{entry.folder}' is not an odometry "
                "sequence number (expected '<sequence> <frame> <side>', e.g. '9 0 l')"
            ) from None

    def date_dir(self, entry: SplitEntry) -> str:
        return sequence_dir(self._root, self.sequence(entry))

    def _image_location(self, entry: SplitEntry, frame_id: str, listings=None) -> tuple[str, str]:
        side, frame = self.frame_source(entry, frame_id)
        directory = image_dir(self._root, self.sequence(entry), calib.CAMERA_OF_SIDE[side])
        return directory, image_name(frame, self._image_ext(directory, listings))

    def _calib_files(self, depth_source: str) -> tuple[str, ...]:
        needed = self.intrinsics == "calib" or self.stereo_baseline == "calib"
        return (CALIB_FILE,) * needed

    def _calibration(self, seq_dir: str, camera: int) -> tuple[np.ndarray, float]:
        """(normalised K, baseline) of a camera of a sequence, cached."""
        key = (seq_dir, camera)
        if key not in self._calib_cache:
            if self.intrinsics == "calib":
                K = projection(seq_dir, camera)[:, :3].copy()
                K[:2, 2] -= 1.0  # 1-based devkit convention -> 0-based pixel centres
                h, w = self._image_size(f"{seq_dir}/image_{camera}")
                K = (K / [[w], [h], [1.0]]).astype(np.float32)
            else:
                K = calib.MONODEPTH2_K.copy()
            if self.stereo_baseline == "calib":
                P2, P3 = projection(seq_dir, 2), projection(seq_dir, 3)
                baseline = float(P2[0, 3] / P2[0, 0] - P3[0, 3] / P3[0, 0])
            else:
                baseline = float(self.stereo_baseline)
            self._calib_cache[key] = (K, baseline)
        return self._calib_cache[key]

    @staticmethod
    def _image_size(directory: str) -> tuple[int, int]:
        from PIL import Image

        names = sorted(n for n in _Listings().names(directory) if n.endswith((".png", ".jpg")))
        if not names:
            raise OdometryLayoutError(f"{directory} holds no image to size calib.txt's K by")
        with Image.open(f"{directory}/{names[0]}") as img:
            return img.height, img.width
