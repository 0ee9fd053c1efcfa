"""Sequences of the video layout on disk: discovery, decoding into a frame cache, static frames.

``data.root`` holds sequences: each a folder of images (``.png``/``.jpg``/``.jpeg``, in name
order) or a video file (``.mp4``/``.mov``/``.mkv``/``.avi``). ``root`` may also be one such
folder or one video file. Names starting with ``.`` are skipped (the frame cache lives there).

Video files are decoded once with PyAV into ``<cache_dir>/<file name>/<height>x<width>/``
as ``%06d.jpg`` (quality 95), already cropped to the network's aspect and resized to the
network size; ``frames.json`` beside them is written last and records the source's size and
modification time, so a changed video is decoded again. At 192x640 a frame takes ~30-60 kB:
a minute of 30 fps video is ~55-110 MB (all frames are cached; the stride picks from them).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data.intrinsics_file import crop_box

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
CACHE_NAME = ".frame_cache"
CACHE_VERSION = 1
JPEG_QUALITY = 95
THUMB_WIDTH = 64  # static-frame test: mean grey difference of 64-pixel-wide thumbnails


class VideoDataError(ValueError):
    """A sequence of the video layout cannot be used (unreadable, empty, too short)."""


@dataclass(frozen=True)
class Sequence:
    """One sequence: a folder of images or a video file.

    Attributes:
        name: the folder's or the file's name (what split files list).
        path: the folder or file.
        is_video: a video file (decoded into the cache) rather than a folder of images.
    """

    name: str
    path: Path
    is_video: bool

    @property
    def intrinsics_file(self) -> Path:
        """Its own intrinsics file: ``<folder>/intrinsics.txt`` or ``<stem>.intrinsics.txt``."""
        if self.is_video:
            return self.path.with_name(self.path.stem + ".intrinsics.txt")
        return self.path / "intrinsics.txt"


def image_files(folder: Path) -> list[Path]:
    """The images of a folder, sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
    )


def discover_sequences(root: Path) -> list[Sequence]:
    """The sequences under ``root``, sorted by name (see the module docstring).

    Raises:
        VideoDataError: ``root`` does not exist or holds no sequence.
    """
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTS:
            raise VideoDataError(f"data.root={root} is a file but not a video {list(VIDEO_EXTS)}")
        return [Sequence(root.name, root, True)]
    if not root.is_dir():
        raise VideoDataError(f"data.root={root} does not exist")
    if image_files(root):
        return [Sequence(root.name, root, False)]
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_EXTS:
            found.append(Sequence(path.name, path, True))
        elif path.is_dir() and image_files(path):
            found.append(Sequence(path.name, path, False))
    if not found:
        raise VideoDataError(
            f"data.root={root} holds no sequence: expected sub-folders of images "
            f"{list(IMAGE_EXTS)} or video files {list(VIDEO_EXTS)}"
        )
    return found


def _rotated(frame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a decoded frame, turned upright by its rotation metadata."""
    image = frame.to_ndarray(format="rgb24")
    turns = int(round(getattr(frame, "rotation", 0) or 0)) // 90 % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _source_stamp(path: Path) -> dict:
    stat = path.stat()
    return {"source": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def decode_video(path: Path, cache_dir: Path, height: int, width: int) -> tuple[list[Path], dict]:
    """The cached frames of a video at (height, width), decoding it first if needed.

    Returns:
        (frame files in time order, the cache's ``frames.json`` content, with the stored
        frames' ``native_size`` (h, w) and the ``crop`` box (top, left, h, w) taken from them).

    Raises:
        VideoDataError: the file cannot be opened or decoded, or has no frames (file named).
    """
    out = cache_dir / path.name / f"{height}x{width}"
    marker = out / "frames.json"
    stamp = _source_stamp(path)
    if marker.is_file():
        meta = json.loads(marker.read_text())
        if meta.get("version") == CACHE_VERSION and meta.get("stamp") == stamp:
            return [out / f"{i:06d}.jpg" for i in range(meta["frames"])], meta
    import av  # only needed to fill the cache

    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count, native, box = 0, None, None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDataError(f"{path}: the video has no frames (no video stream)")
            for frame in container.decode(video=0):
                image = _rotated(frame)
                if native is None:
                    native = image.shape[:2]
                    box = crop_box(*native, height, width)
                top, left, h, w = box
                crop = Image.fromarray(image[top : top + h, left : left + w])
                crop = crop.resize((width, height), Image.Resampling.BICUBIC)
                crop.save(tmp / f"{count:06d}.jpg", quality=JPEG_QUALITY)
                count += 1
    except VideoDataError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as error:  # av.error.* and anything FFmpeg reports
        shutil.rmtree(tmp, ignore_errors=True)
        raise VideoDataError(f"{path}: cannot decode the video ({error})") from None
    if count == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VideoDataError(f"{path}: the video has no frames")
    meta = {
        "version": CACHE_VERSION,
        "stamp": stamp,
        "frames": count,
        "native_size": list(native),
        "crop": list(box),
        "size": [height, width],
    }
    (tmp / "frames.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    try:
        os.replace(tmp, out)  # atomic: another process (a DDP rank) may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / f"{i:06d}.jpg" for i in range(count)], meta


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header.

    Raises:
        VideoDataError: the file is not a readable image (named).
    """
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except OSError as error:
        raise VideoDataError(f"{path}: not a readable image ({error})") from None


def thumbnail(path: Path) -> np.ndarray:
    """(h, THUMB_WIDTH) float32 grey levels in [0, 255] of an image, for the static test."""
    with Image.open(path) as img:
        img.draft("L", (THUMB_WIDTH, THUMB_WIDTH))  # JPEG decodes at a reduced scale
        grey = img.convert("L")
        h = max(1, round(grey.height * THUMB_WIDTH / grey.width))
        return np.asarray(grey.resize((THUMB_WIDTH, h), Image.Resampling.BOX), dtype=np.float32)


def moving_frames(files: list[Path], threshold: float) -> list[int]:
    """Positions of the frames to keep: each differs enough from the last frame kept.

    A frame is near-static when the mean absolute difference of its grey thumbnail and that of
    the last kept frame is below ``threshold`` (grey levels, 0-255); the first frame is always
    kept. A stationary stretch thus shrinks to its first frame, so the neighbours of a kept
    frame are again frames of motion (Zhou et al. 2017 removed static KITTI frames the same
    way, with optical flow instead of image differences).
    """
    kept = [0]
    reference = thumbnail(files[0]) if files else None
    for i in range(1, len(files)):
        current = thumbnail(files[i])
        if float(np.abs(current - reference).mean()) >= threshold:
            kept.append(i)
            reference = current
    return kept
