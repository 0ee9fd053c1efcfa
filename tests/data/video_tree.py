"""The synthetic drives re-encoded as the video layout: mp4 files or folders of frames.

Imported by the data tests (``from video_tree import ...``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
from PIL import Image

FPS = 10


def synthetic_drives(synthetic_root: Path) -> list[dict]:
    """The drives of a synthetic dataset as ``synthetic.json`` lists them."""
    return json.loads((Path(synthetic_root) / "synthetic.json").read_text())["drives"]


def drive_frames(synthetic_root: Path, drive: dict) -> list[Path]:
    """Camera-2 PNGs of a synthetic drive, in time order."""
    return sorted((Path(synthetic_root) / drive["folder"] / "image_02" / "data").glob("*.png"))


def pixel_K(synthetic_root: Path) -> np.ndarray:
    """(3, 3) pixel intrinsics of camera 2 of the synthetic drives (0-based, from P_rect_02)."""
    from mono.data import calib
    from mono.data.synth_drive import DATE

    P, (h, w) = calib.projection_matrix(Path(synthetic_root) / DATE, 2)
    K = P[:, :3].copy()
    K[:2, 2] -= 1.0
    return K


def write_k_file(path: Path, K: np.ndarray) -> Path:
    """``K: ...`` in pixels, as a user would write it."""
    path.write_text(
        "# camera 2 of the synthetic drives\nK: " + " ".join(f"{v:.10g}" for v in K.ravel()) + "\n"
    )
    return path


def encode_mp4(frames: list[Path], path: Path, fps: int = FPS) -> Path:
    """H.264 mp4 (yuv420p, CRF 12: near-lossless) of PNG frames."""
    with av.open(str(path), mode="w") as container:
        first = Image.open(frames[0])
        stream = container.add_stream("libx264", rate=fps, options={"crf": "12"})
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = "yuv420p"
        for frame_path in frames:
            image = np.asarray(Image.open(frame_path).convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_video_tree(synthetic_root: Path, out: Path, kind: str = "mp4") -> Path:
    """Every synthetic drive as ``out/drive_N.mp4`` (kind "mp4") or ``out/drive_N/`` (kind
    "folder", the PNGs copied), plus ``out/intrinsics.txt`` with camera 2's pixel K."""
    out.mkdir(parents=True, exist_ok=True)
    for drive in synthetic_drives(synthetic_root):
        name = f"drive_{drive['folder'][-9:-5]}"
        frames = drive_frames(synthetic_root, drive)
        if kind == "mp4":
            encode_mp4(frames, out / f"{name}.mp4")
        else:
            (out / name).mkdir(exist_ok=True)
            for frame in frames:
                shutil.copy(frame, out / name / frame.name)
    write_k_file(out / "intrinsics.txt", pixel_K(synthetic_root))
    return out
