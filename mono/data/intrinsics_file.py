"""Intrinsics files of the video layout: K in pixels, normalised K, or a field of view.

One ``intrinsics.txt`` per sequence (``<folder>/intrinsics.txt``, ``<video stem>.intrinsics.txt``
beside a video file) or one for the whole root (``<root>/intrinsics.txt``); the sequence's own
file wins. It holds exactly one of these lines (``#`` starts a comment)::

    K: 721.5 0 609.6 0 721.5 172.9 0 0 1   # 3x3 row-major, pixels of the frames as stored
    normalized: 0.58 1.92 0.5 0.5          # fx/W fy/H cx/W cy/H (Monodepth2's K for KITTI)
    hfov: 81.0                             # horizontal field of view in degrees

Pixel values refer to the frames as stored (the video's displayed size or the images' size),
before mono crops them to the network's aspect. ``hfov`` assumes square pixels and a centred
principal point (a phone's video mode is close to both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "intrinsics.txt"
KEYS = {"K": 9, "normalized": 4, "hfov": 1}
FORMAT_HINT = "one line 'K: 9 numbers' (pixels), 'normalized: fx fy cx cy' or 'hfov: degrees'"


class IntrinsicsFileError(ValueError):
    """An intrinsics file is missing, malformed or physically impossible."""


@dataclass(frozen=True)
class IntrinsicsSpec:
    """The parsed content of an intrinsics file.

    Attributes:
        kind: ``"K"``, ``"normalized"`` or ``"hfov"``.
        values: the numbers of its line (9, 4 or 1).
        path: the file, named in errors.
    """

    kind: str
    values: tuple[float, ...]
    path: Path

    def normalised(self, height: int, width: int) -> np.ndarray:
        """(3, 3) float64 K normalised by the stored frames' size (height, width) in pixels.

        Raises:
            IntrinsicsFileError: the principal point lies outside the image.
        """
        if self.kind == "K":
            K = np.array(self.values, dtype=np.float64).reshape(3, 3)
            K[0] /= width
            K[1] /= height
        elif self.kind == "normalized":
            fx, fy, cx, cy = self.values
            K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        else:
            fx_px = 0.5 * width / math.tan(math.radians(self.values[0]) / 2.0)
            K = np.array([[fx_px / width, 0.0, 0.5], [0.0, fx_px / height, 0.5], [0, 0, 1.0]])
        if not (0.0 < K[0, 2] < 1.0 and 0.0 < K[1, 2] < 1.0):
            raise IntrinsicsFileError(
                f"{self.path}: principal point ({K[0, 2] * width:g}, {K[1, 2] * height:g}) px "
                f"lies outside the {width}x{height} frames"
            )
        return K


def _check(kind: str, values: list[float], where: str) -> None:
    if kind == "K":
        K = np.reshape(values, (3, 3))
        if K[1, 0] or K[2, 0] or K[2, 1] or K[0, 1] or K[2, 2] != 1.0:
            raise IntrinsicsFileError(
                f"{where}: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got {values}"
            )
        fx, fy = K[0, 0], K[1, 1]
    elif kind == "normalized":
        fx, fy = values[0], values[1]
    else:
        if not 0.0 < values[0] < 180.0:
            raise IntrinsicsFileError(f"{where}: hfov={values[0]:g} must be in (0, 180) degrees")
        return
    if not (fx > 0 and fy > 0):
        raise IntrinsicsFileError(f"{where}: focal lengths fx={fx:g}, fy={fy:g} must be > 0")


def read_intrinsics_file(path: str | Path) -> IntrinsicsSpec:
    """Parse and validate an intrinsics file (see the module docstring for the format).

    Raises:
        IntrinsicsFileError: a missing file, no or several entries, an unknown key, a wrong
            count of numbers, a non-finite number, skew, a focal length <= 0 or an impossible
            field of view; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise IntrinsicsFileError(f"intrinsics file not found: {path}")
    found: list[tuple[str, list[float], int]] = []
    for number, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path}:{number}"
        key, sep, rest = text.partition(":")
        key = key.strip()
        if not sep or key not in KEYS:
            raise IntrinsicsFileError(f"{where}: expected {FORMAT_HINT}, got {text!r}")
        try:
            values = [float(v) for v in rest.replace(",", " ").split()]
        except ValueError:
            raise IntrinsicsFileError(f"{where}: '{key}' holds a non-number: {text!r}") from None
        if len(values) != KEYS[key]:
            raise IntrinsicsFileError(
                f"{where}: '{key}' needs {KEYS[key]} numbers, got {len(values)}: {text!r}"
            )
        if not all(math.isfinite(v) for v in values):
            raise IntrinsicsFileError(f"{where}: '{key}' holds a non-finite number: {text!r}")
        _check(key, values, where)
        found.append((key, values, number))
    if len(found) != 1:
        lines = [n for _, _, n in found]
        problem = "is empty" if not found else f"has {len(found)} entries (lines {lines})"
        raise IntrinsicsFileError(f"{path} {problem}: expected {FORMAT_HINT}")
    key, values, _ = found[0]
    return IntrinsicsSpec(key, tuple(values), path)


def crop_box(height: int, width: int, out_height: int, out_width: int) -> tuple[int, int, int, int]:
    """The centred (top, left, height, width) crop of a frame to the aspect of the output size.

    Cropping before resizing keeps the pixels square: a 1080x1920 phone frame for a 192x640
    network keeps 576 of its 1080 rows (1920 / 640 * 192).
    """
    aspect = out_width / out_height
    if width / height > aspect:
        w = min(width, max(1, round(height * aspect)))
        return 0, (width - w) // 2, height, w
    h = min(height, max(1, round(width / aspect)))
    return (height - h) // 2, 0, h, width


def cropped_intrinsics(K_norm: np.ndarray, size: tuple[int, int], box) -> np.ndarray:
    """(3, 3) float32 K normalised by a crop of frames of ``size`` (height, width) in pixels.

    Args:
        K_norm: (3, 3) K normalised by the full frame.
        size: (height, width) of the full frame.
        box: (top, left, height, width) of the crop, from :func:`crop_box`.
    """
    h, w = size
    top, left, ch, cw = box
    K = np.array(K_norm, dtype=np.float64) * [[w], [h], [1.0]]  # pixels of the full frame
    K[0, 2] -= left
    K[1, 2] -= top
    return (K / [[cw], [ch], [1.0]]).astype(np.float32)
