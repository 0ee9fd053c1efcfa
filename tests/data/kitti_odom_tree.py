"""The synthetic drives written in the KITTI odometry layout, with odom-style split files.

Imported by the data tests (``from kitti_odom_tree import ...``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mono.data import calib
from mono.data.synth_drive import DATE
from mono.data.synth_video import synthetic_drives

# Synthetic drive (train, train, val, test) -> odometry sequence; the test drive plays 09.
SEQUENCES = (0, 1, 2, 9)


def write_kitti_odom_tree(synthetic_root: Path, out: Path) -> Path:
    """``out/sequences/NN/image_2|image_3``, ``calib.txt`` (P0..P3 of the drives), ``poses/NN.txt``
    and ``out/splits/odom_tiny/{train,val}_files.txt`` (``<sequence> <frame> <side>`` lines of
    frames 1 .. n-2 of the train and val drives, both sides)."""
    synthetic_root = Path(synthetic_root)
    cam_to_cam = calib.read_calib_file(synthetic_root / DATE / calib.CAM_TO_CAM)
    calib_lines = [
        f"P{c}: " + " ".join(f"{v:.12e}" for v in cam_to_cam[f"P_rect_0{c}"]) for c in range(4)
    ]
    calib_lines.append("Tr: " + " ".join(["1 0 0 0 0 1 0 0 0 0 1 0"]))
    lines: dict[str, list[str]] = {"train": [], "val": []}
    (out / "poses").mkdir(parents=True, exist_ok=True)
    for drive, sequence in zip(synthetic_drives(synthetic_root), SEQUENCES, strict=True):
        seq_dir = out / "sequences" / f"{sequence:02d}"
        for camera in (2, 3):
            source = synthetic_root / drive["folder"] / f"image_0{camera}" / "data"
            (seq_dir / f"image_{camera}").mkdir(parents=True, exist_ok=True)
            for t in range(drive["frames"]):
                shutil.copy(source / f"{t:010d}.png", seq_dir / f"image_{camera}" / f"{t:06d}.png")
        (seq_dir / "calib.txt").write_text("\n".join(calib_lines) + "\n")
        shutil.copy(
            synthetic_root / drive["folder"] / "poses.txt", out / "poses" / f"{sequence:02d}.txt"
        )
        if drive["split"] in lines:
            for t in range(1, drive["frames"] - 1):
                lines[drive["split"]] += [f"{sequence} {t} l", f"{sequence} {t} r"]
    split = out / "splits" / "odom_tiny"
    split.mkdir(parents=True, exist_ok=True)
    for stage, stage_lines in lines.items():
        (split / f"{stage}_files.txt").write_text("".join(line + "\n" for line in stage_lines))
    return out
