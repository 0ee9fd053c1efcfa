"""The synthetic drives re-encoded in the video layout: mp4 files or folders of frames.

What a user with their own videos would write, made from the KITTI-layout synthetic drives
(:mod:`mono.data.synth`): one sequence per drive and camera, ``intrinsics.txt`` with the
drives' true pixel K, and ``splits/{train,val}_files.txt`` naming the sequences of each stage
as the drives' own split does. The data tests and ``scripts/video_vs_kitti.py`` (training on
the video layout against training on the KITTI layout) read these trees.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data import calib
from mono.data.synth import MARKER
from mono.data.synth_drive import DATE

FPS = 10  # the drives move ~1 m per frame, as KITTI at 10 Hz
CRF = 12  # H.264 quality: near-lossless, so the frames differ from the PNGs by a few levels
STAGES = ("train", "val")  # the video layout has no test stage (no ground truth)


def synthetic_drives(synthetic_root: str | Path) -> list[dict]:
    """The drives of a synthetic dataset as its ``synthetic.json`` lists them."""
    return json.loads((Path(synthetic_root) / MARKER).read_text())["drives"]


def drive_frames(synthetic_root: str | Path, drive: dict, camera: int = 2) -> list[Path]:
    """PNGs of one camera (2 left, 3 right) of a synthetic drive, in time order."""
    folder = Path(synthetic_root) / drive["folder"] / f"image_0{camera}" / "data"
    return sorted(folder.glob("*.png"))


def pixel_K(synthetic_root: str | Path, camera: int = 2) -> np.ndarray:
    """(3, 3) pixel intrinsics of a camera of the synthetic drives (0-based, from P_rect)."""
    P, _ = calib.projection_matrix(Path(synthetic_root) / DATE, camera)
    K = P[:, :3].copy()
    K[:2, 2] -= 1.0  # KITTI's P_rect is 1-based
    return K


def write_k_file(path: Path, K: np.ndarray, camera: int = 2) -> Path:
    """``K: ...`` in pixels, as a user would write it."""
    path.write_text(
        f"# camera {camera} of the synthetic drives\nK: "
        + " ".join(f"{v:.10g}" for v in np.ravel(K))
        + "\n"
    )
    return path


def encode_mp4(frames: list[Path], path: Path, fps: int = FPS) -> Path:
    """H.264 mp4 (yuv420p, CRF :data:`CRF`) of PNG frames."""
    import av  # only needed to write videos

    with av.open(str(path), mode="w") as container:
        first = Image.open(frames[0])
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(CRF)})
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = "yuv420p"
        for frame_path in frames:
            image = np.asarray(Image.open(frame_path).convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def sequence_name(drive: dict, camera: int) -> str:
    """``drive_NNNN`` for the left camera (2), ``drive_NNNN_right`` for the right one (3)."""
    return f"drive_{drive['folder'][-9:-5]}" + ("_right" if camera == 3 else "")


def write_video_tree(
    synthetic_root: str | Path,
    out: Path,
    kind: str = "mp4",
    splits: Iterable[str] | None = None,
    cameras: Iterable[int] = (2,),
) -> Path:
    """The synthetic drives in the video layout under ``out``.

    Writes each drive of ``splits`` and each of its ``cameras`` as ``out/<name>.mp4`` (kind
    "mp4") or ``out/<name>/`` (kind "folder", the PNGs copied), names from
    :func:`sequence_name`; ``out/intrinsics.txt`` with camera 2's pixel K and, for camera 3,
    ``<name>.intrinsics.txt`` (mp4) or ``<name>/intrinsics.txt`` with its own; and
    ``out/splits/{train,val}_files.txt`` listing the sequences of the train and val drives
    (``<name>.mp4`` or ``<name>``).

    Args:
        synthetic_root: a complete synthetic dataset (:func:`mono.data.synth.write_dataset`).
        out: the tree's root (created).
        kind: ``"mp4"`` or ``"folder"``.
        splits: the drive splits to write (``"train"``, ``"val"``, ``"test"``); None = all.
        cameras: 2 (left), 3 (right) or both: the KITTI layout trains on both as separate
            monocular sequences.

    Raises:
        ValueError: an unknown kind or camera.
    """
    if kind not in ("mp4", "folder"):
        raise ValueError(f"kind={kind!r}: choose 'mp4' or 'folder'")
    cameras = tuple(cameras)
    if not set(cameras) <= {2, 3}:
        raise ValueError(f"cameras={cameras}: the synthetic drives have cameras 2 and 3")
    out.mkdir(parents=True, exist_ok=True)
    wanted = None if splits is None else set(splits)
    names: dict[str, list[str]] = {stage: [] for stage in STAGES}
    for drive in synthetic_drives(synthetic_root):
        if wanted is not None and drive["split"] not in wanted:
            continue
        for camera in cameras:
            name = sequence_name(drive, camera)
            frames = drive_frames(synthetic_root, drive, camera)
            if kind == "mp4":
                encode_mp4(frames, out / f"{name}.mp4")
                k_file = out / f"{name}.intrinsics.txt"
            else:
                (out / name).mkdir(exist_ok=True)
                for frame in frames:
                    shutil.copy(frame, out / name / frame.name)
                k_file = out / name / "intrinsics.txt"
            if camera != 2:
                write_k_file(k_file, pixel_K(synthetic_root, camera), camera)
            # Split files name a sequence as discovery does: a video by its file name.
            listed = f"{name}.mp4" if kind == "mp4" else name
            names.setdefault(drive["split"], []).append(listed)
    write_k_file(out / "intrinsics.txt", pixel_K(synthetic_root, 2))
    (out / "splits").mkdir(exist_ok=True)
    for stage in STAGES:
        (out / "splits" / f"{stage}_files.txt").write_text("".join(f"{n}\n" for n in names[stage]))
    return out
