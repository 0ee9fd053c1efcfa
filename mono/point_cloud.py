"""Coloured point clouds from predicted depth: intrinsics, back-projection, binary PLY files.

Points are in the camera frame of :mod:`mono.geometry` (x right, y down, z forward, metres),
one per pixel with a finite positive depth, in row-major pixel order, coloured by the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mono.data.calib import MONODEPTH2_K
from mono.geometry import backproject, scale_intrinsics

PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)
_PLY_TYPES = {"float": "<f4", "uchar": "u1"}


@dataclass(frozen=True)
class CameraIntrinsics:
    """Normalised intrinsics and where they came from.

    Attributes:
        K: (3, 3) with row 0 divided by the image width and row 1 by its height.
        source: what they are, in words (printed, and written into each PLY header).
    """

    K: np.ndarray
    source: str

    def describe(self) -> str:
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2]
        return f"fx={fx:g} fy={fy:g} cx={cx:g} cy={cy:g} (normalised), {self.source}"


def kitti_intrinsics(source: str) -> CameraIntrinsics:
    return CameraIntrinsics(MONODEPTH2_K.copy(), source)


def training_intrinsics(weights: str | Path, datamodule_hparams: dict) -> tuple[bool, str]:
    """Whether a model's training used one known K (Monodepth2's average KITTI K), and why.

    Args:
        weights: the checkpoint or Monodepth2 weights folder.
        datamodule_hparams: the checkpoint's ``datamodule_hyper_parameters`` (empty for a
            weights folder).
    """
    if Path(weights).is_dir():
        return True, "a Monodepth2 weights folder: trained with Monodepth2's average KITTI K"
    intrinsics = datamodule_hparams.get("intrinsics")
    if intrinsics == "monodepth2":
        return True, f"{weights} was trained with Monodepth2's average KITTI K"
    if intrinsics == "calib":
        return False, f"{weights} was trained with each drive's calibration (not stored)"
    return False, f"{weights} does not record its training intrinsics"


def choose_intrinsics(
    given: tuple[float | None, ...],
    weights: str | Path,
    datamodule_hparams: dict,
    learned: np.ndarray | None = None,
) -> CameraIntrinsics:
    """``--fx --fy --cx --cy`` when given, else the model's learned camera, else its training
    K, else the KITTI average.

    Args:
        given: ``(fx, fy, cx, cy)`` normalised, all None when not given.
        weights: the checkpoint or weights folder (named in the description).
        datamodule_hparams: the checkpoint's ``datamodule_hyper_parameters``.
        learned: (3, 3) normalised K the model learned (``LoadedNetworks.learned_K``), or None.

    Raises:
        ValueError: only some of the four were given, or a focal length is not positive.
    """
    if any(v is not None for v in given):
        if any(v is None for v in given):
            raise ValueError("--fx/--fy/--cx/--cy: give all four (normalised), or none")
        fx, fy, cx, cy = (float(v) for v in given)
        if fx <= 0 or fy <= 0:
            raise ValueError(f"--fx {fx:g} --fy {fy:g}: focal lengths must be positive")
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)
        return CameraIntrinsics(K, "from --fx/--fy/--cx/--cy")
    if learned is not None:
        return CameraIntrinsics(
            np.asarray(learned, np.float32), f"the learned intrinsics of {weights}"
        )
    known, why = training_intrinsics(weights, datamodule_hparams)
    if known:
        return kitti_intrinsics(f"the model's training intrinsics ({why})")
    return kitti_intrinsics(f"Monodepth2's average KITTI K, a default ({why}; set --fx ...)")


def point_cloud(
    depth: np.ndarray, rgb: np.ndarray, K_norm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a depth map into coloured camera-frame points.

    Args:
        depth: (H, W) z-depth in metres; pixels that are not finite and positive are skipped.
        rgb: (H, W, 3) uint8 colours of the same pixels.
        K_norm: (3, 3) normalised intrinsics (scaled to (H, W) here).

    Returns:
        ``(points, colours)``: (N, 3) float32 and (N, 3) uint8, N = the valid pixels.
    """
    h, w = depth.shape
    if rgb.shape != (h, w, 3):
        raise ValueError(f"point_cloud: colours {rgb.shape} do not match depth {depth.shape}")
    K = scale_intrinsics(torch.as_tensor(K_norm, dtype=torch.float64)[None], h, w)
    depth_t = torch.as_tensor(np.nan_to_num(depth, nan=0.0, posinf=0.0), dtype=torch.float64)
    points = backproject(depth_t[None, None], torch.linalg.inv(K))[0].numpy()
    valid = np.isfinite(depth) & (depth > 0)
    return points[valid].astype(np.float32), rgb[valid]


def write_ply(path: str | Path, points: np.ndarray, colours: np.ndarray, comment: str = "") -> Path:
    """A binary little-endian PLY of coloured vertices (x, y, z float; red, green, blue uchar)."""
    vertices = np.empty(len(points), PLY_VERTEX)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = colours[:, i]
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {line}" for line in comment.splitlines() if line]
    lines += [f"element vertex {len(vertices)}"]
    lines += [f"property float {axis}" for axis in "xyz"]
    lines += [f"property uchar {channel}" for channel in ("red", "green", "blue")]
    lines += ["end_header"]
    path = Path(path)
    with path.open("wb") as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
        f.write(vertices.tobytes())
    return path


def read_ply(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """The vertices of a binary little-endian PLY of one vertex element, and its comments.

    Returns:
        ``(vertices, comments)``: a structured array named by the file's properties.
    """
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    if header[:2] != ["ply", "format binary_little_endian 1.0"]:
        raise ValueError(f"{path}: not a binary little-endian PLY file")
    count, fields, comments = 0, [], []
    for line in header[2:-1]:
        words = line.split()
        if words[0] == "comment":
            comments.append(line[len("comment ") :])
        elif words[:2] == ["element", "vertex"]:
            count = int(words[2])
        elif words[0] == "property":
            fields.append((words[2], _PLY_TYPES[words[1]]))
    return np.frombuffer(data, np.dtype(fields), count, offset=end), comments
