"""``mono predict``: disparity (and metric depth) for an image, a folder of images or a video.

As Monodepth2's ``test_simple.py``: each frame is resized with LANCZOS to the size the network
was trained at, its sigmoid disparity is turned into a scaled disparity
(``disp_to_depth``) and resized bilinearly back to the frame's size. Per frame ``<name>``:

- ``<name>_disp.npy``: scaled disparity (H, W) float32 at the original size;
- ``<name>_disp.png`` (or ``.jpg``): magma colour map from the minimum to the 95th percentile;
- ``<name>_depth.npy``: metres, ``metric_scale / disparity``, for models with a metric scale
  (stereo-trained or supervised; :attr:`mono.checkpoint.LoadedNetworks.metric_scale`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence

from mono.checkpoint import LoadedNetworks
from mono.data.images import GrayscaleNotice, ImageDecodeError, read_colour_image, to_rgb
from mono.geometry import disp_to_depth
from mono.output_files import check_writable_folder, writing
from mono.tools import COLOUR_EXTS
from mono.visualize import colorize

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
ANIMATION_EXTS = (".gif",)  # decoded frame by frame with PIL
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")  # need PyAV


class VideoBackendError(RuntimeError):
    """No library that decodes this video is installed."""


@dataclass
class Prediction:
    """Files written for one frame (``depth`` is None for models without a metric scale)."""

    name: str
    disp: Path
    picture: Path
    depth: Path | None = None


def _video_frames(path: Path) -> Iterator[tuple[str, Image.Image]]:
    try:
        import av  # optional: torchvision >= 0.22 no longer decodes video itself
    except ImportError:
        raise VideoBackendError(
            f"{path}: decoding {path.suffix} video needs PyAV (`pip install av`), which is not "
            "installed (torchvision.io.read_video is gone from this torchvision). Extract the "
            "frames first (e.g. `ffmpeg -i video.mp4 frames/%06d.png`) and predict the folder, "
            "or pass an animated GIF"
        ) from None
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            yield f"{path.stem}_{i:06d}", frame.to_image()


def _animation_frames(path: Path) -> Iterator[tuple[str, Image.Image]]:
    with Image.open(path) as img:
        for i, frame in enumerate(ImageSequence.Iterator(img)):
            yield f"{path.stem}_{i:06d}", to_rgb(frame, path)


def list_images(folder: Path) -> list[Path]:
    """Images directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def read_frames(
    source: str | Path, skipped: list[str] | None = None
) -> Iterator[tuple[str, Image.Image]]:
    """``(name, RGB image)`` for an image file, a folder of images or a video / animated GIF.

    Args:
        source: the input.
        skipped: when given, an unreadable image of a folder is skipped and the reason appended
            here; otherwise it raises.

    Raises:
        FileNotFoundError: ``source`` does not exist or a folder holds no images.
        ValueError: an unknown file type; an image that cannot be decoded
            (:class:`~mono.data.images.ImageDecodeError`, naming it).
        VideoBackendError: a video without a decoding backend (which one to install is named).
    """
    path = Path(source)
    grayscale = GrayscaleNotice(str(path))
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_EXTS)}) in this folder")
        stems = [p.stem for p in images]
        for p in images:
            # a.jpg next to a.png would overwrite each other's outputs
            name = p.stem if stems.count(p.stem) == 1 else f"{p.stem}_{p.suffix[1:]}"
            try:
                image = read_colour_image(p, grayscale)
            except ImageDecodeError as err:
                if skipped is None:
                    raise
                skipped.append(str(err))
                continue
            yield name, image
        return
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTS:
        yield path.stem, read_colour_image(path, grayscale)
    elif suffix in ANIMATION_EXTS:
        yield from _animation_frames(path)
    elif suffix in VIDEO_EXTS:
        yield from _video_frames(path)
    else:
        known = IMAGE_EXTS + ANIMATION_EXTS + VIDEO_EXTS
        raise ValueError(f"{path}: unknown input type {suffix!r}; expected one of {known}")


def _batches(frames: Iterable, size: int) -> Iterator[list]:
    it = iter(frames)
    while batch := list(islice(it, size)):
        yield batch


def to_network_input(images: list[Image.Image], height: int, width: int) -> torch.Tensor:
    """(B, 3, height, width) float in [0, 1], LANCZOS-resized as Monodepth2's loaders do."""
    arrays = [
        np.asarray(img.resize((width, height), Image.Resampling.LANCZOS), np.float32) / 255.0
        for img in images
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def predict_disparities(
    nets: LoadedNetworks, images: list[Image.Image], device: torch.device | str = "cpu"
) -> list[torch.Tensor]:
    """Scaled disparity of each image at its own size, (1, 1, H_i, W_i) each, on the CPU.

    Scaled disparity is ``disp_to_depth(sigmoid, min_depth, max_depth)[0]``, i.e. 1 / depth
    (up to scale for monocular models; ``nets.metric_scale`` / metres for the others).
    """
    batch = to_network_input(images, nets.height, nets.width).to(device)
    with torch.no_grad():
        sigmoid = nets.depth(batch).disps[0]
        scaled, _ = disp_to_depth(sigmoid, nets.min_depth, nets.max_depth)
    scaled = scaled.float().cpu()
    return [
        F.interpolate(d[None], size=(img.height, img.width), mode="bilinear", align_corners=False)
        for d, img in zip(scaled, images, strict=True)
    ]


def _save_picture(disp: torch.Tensor, path: Path) -> None:
    # vmin at the minimum and vmax at the 95th percentile, as Monodepth2's test_simple.py
    rgb = colorize(disp, "magma", vmin=None, percentile=95.0)[0]
    array = (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path)


def predict(
    nets: LoadedNetworks,
    source: str | Path,
    out: str | Path,
    batch_size: int = 8,
    ext: str = "png",
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = print,
    skipped: list[str] | None = None,
) -> list[Prediction]:
    """Predict every frame of ``source`` (see :func:`read_frames`) and write the files to ``out``.

    A frame whose disparity is not finite everywhere gets no file at all.

    Args:
        skipped: when given, unreadable images of a folder and frames with a non-finite
            prediction are skipped and described here (and logged); otherwise they raise.

    Returns:
        One :class:`Prediction` per frame written, in input order.

    Raises:
        ValueError: a bad option; without ``skipped``, an unreadable image or a non-finite
            prediction (naming the frame).
    """
    if ext not in COLOUR_EXTS:
        raise ValueError(f"--ext {ext!r}: choose one of {COLOUR_EXTS}")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be at least 1")
    out = check_writable_folder(out, "--out")
    nets.depth.to(device).eval()
    done: list[Prediction] = []
    problems: list[str] = [] if skipped is None else skipped
    reported = len(problems)

    def report_new() -> None:
        nonlocal reported
        for problem in problems[reported:]:
            if log:
                log(f"predict: skipped {problem}")
        reported = len(problems)

    frames = read_frames(source, problems if skipped is not None else None)
    for batch in _batches(frames, batch_size):
        report_new()
        names, images = zip(*batch, strict=True)
        for name, disp in zip(names, predict_disparities(nets, list(images), device), strict=True):
            bad = int((~torch.isfinite(disp)).sum())
            if bad:
                problem = (
                    f"frame {name}: the network predicted {bad} non-finite disparities of "
                    f"{disp.numel()}; nothing written for this frame"
                )
                if skipped is None:
                    raise ValueError(problem)
                problems.append(problem)
                continue
            pred = Prediction(name, out / f"{name}_disp.npy", out / f"{name}_disp.{ext}")
            with writing(pred.disp):
                np.save(pred.disp, disp[0, 0].numpy())
            with writing(pred.picture):
                _save_picture(disp, pred.picture)
            if nets.metric_scale is not None:
                pred.depth = out / f"{name}_depth.npy"
                with writing(pred.depth):
                    np.save(pred.depth, (nets.metric_scale / disp[0, 0]).numpy())
            done.append(pred)
        report_new()
        if log:
            log(f"predict: {len(done)} frame(s) done, last {names[-1]} -> {out}")
    report_new()
    return done
