"""``mono predict``: disparity (and metric depth) for an image, a folder of images or a video.

As Monodepth2's ``test_simple.py``: each frame is resized with LANCZOS to the size the network
was trained at, its sigmoid disparity is turned into a scaled disparity
(``disp_to_depth``) and resized bilinearly back to the frame's size. Per frame ``<name>``:

- ``<name>_disp.npy``: scaled disparity (H, W) float32 at the original size;
- ``<name>_disp.png`` (or ``.jpg``): magma colour map from the minimum to the 95th percentile;
- ``<name>_depth.npy``: metres, ``metric_scale / disparity``, for models with a metric scale
  (stereo-trained or supervised; :attr:`mono.checkpoint.LoadedNetworks.metric_scale`) or with
  a scale given by the user;
- ``<name>.ply`` (``point_cloud``): the frame's pixels back-projected with that depth
  (:mod:`mono.point_cloud`).

``video`` also writes the frames beside their colour maps as one MP4 or GIF
(:mod:`mono.depth_video`); ``post_process`` blends in the prediction of the mirrored frame as
evaluation does (:func:`mono.evaluation.depth.post_process_disparity`).
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
from mono.depth_video import DEFAULT_FPS, SideBySideVideo
from mono.evaluation.depth import batch_disparities
from mono.geometry import disp_to_depth
from mono.output_files import check_writable_folder, writing
from mono.point_cloud import CameraIntrinsics, point_cloud, write_ply
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
    cloud: Path | None = None


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


def frame_rate(source: str | Path) -> float | None:
    """Frames per second of a video or animated GIF; None for images and folders."""
    path = Path(source)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix in IMAGE_EXTS:
        return None
    if suffix in ANIMATION_EXTS:
        with Image.open(path) as img:
            duration = img.info.get("duration")
        return 1000.0 / duration if duration else None
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else None


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
    nets: LoadedNetworks,
    images: list[Image.Image],
    device: torch.device | str = "cpu",
    post_process: bool = False,
) -> list[torch.Tensor]:
    """Scaled disparity of each image at its own size, (1, 1, H_i, W_i) each, on the CPU.

    Scaled disparity is ``disp_to_depth(sigmoid, min_depth, max_depth)[0]``, i.e. 1 / depth
    (up to scale for monocular models; ``nets.metric_scale`` / metres for the others).
    ``post_process`` also predicts the mirrored images and blends the two as Monodepth2's
    evaluation does.
    """
    scaled = batch_disparities(
        lambda x: nets.depth(x).disps[0],
        to_network_input(images, nets.height, nets.width).to(device),
        post_process,
        lambda d: disp_to_depth(d, nets.min_depth, nets.max_depth)[0],
    )
    return [
        F.interpolate(d[None], size=(img.height, img.width), mode="bilinear", align_corners=False)
        for d, img in zip(scaled, images, strict=True)
    ]


def depth_picture(disp: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 magma picture of a (1, 1, H, W) disparity, as ``test_simple.py``'s:
    from the minimum to the 95th percentile."""
    rgb = colorize(disp, "magma", vmin=None, percentile=95.0)[0]
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def check_depth_scale(nets: LoadedNetworks, scale: float | None, what: str) -> float:
    """Metres per unit of the model's depth: ``scale`` when given, else the model's own.

    Raises:
        ValueError: neither (a monocular model's depth has no unit), naming ``what`` needs it.
    """
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"--scale {scale:g}: must be positive")
        return scale
    if nets.metric_scale is None:
        raise ValueError(
            f"{what} needs depth in metres, but this model has no metric scale (trained "
            "without a stereo frame 's' or ground truth, its depth is known up to scale); "
            "give --scale S, the metres per unit of its depth (e.g. a known distance divided "
            "by the predicted one)"
        )
    return nets.metric_scale


def predict(
    nets: LoadedNetworks,
    source: str | Path,
    out: str | Path,
    batch_size: int = 8,
    ext: str = "png",
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = print,
    *,
    post_process: bool = False,
    scale: float | None = None,
    intrinsics: CameraIntrinsics | None = None,
    video: str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Prediction]:
    """Predict every frame of ``source`` (see :func:`read_frames`) and write the files to ``out``.

    A frame whose disparity is not finite everywhere gets no file at all.

    Args:
        post_process: blend in the mirrored frame's prediction (see :func:`predict_disparities`).
        scale: metres per unit of predicted depth, instead of the model's metric scale.
        intrinsics: write a ``<name>.ply`` point cloud per frame with these intrinsics; needs
            a metric scale (the model's or ``scale``).
        video: also write ``[frame | depth picture]`` pairs to this .mp4 or .gif file.
        skipped: when given, unreadable images of a folder and frames with a non-finite
            prediction are skipped and described here (and logged); otherwise they raise.

    Returns:
        One :class:`Prediction` per frame written, in input order.

    Raises:
        ValueError: bad options, or a point cloud without a metric scale; without ``skipped``,
            an unreadable image or a non-finite prediction (naming the frame).
    """
    if ext not in COLOUR_EXTS:
        raise ValueError(f"--ext {ext!r}: choose one of {COLOUR_EXTS}")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be at least 1")
    if intrinsics is not None or scale is not None:
        scale = check_depth_scale(nets, scale, "--point-cloud")
    else:
        scale = nets.metric_scale
    out = check_writable_folder(out, "--out")
    problems: list[str] = [] if skipped is None else skipped
    reported = len(problems)

    def report_new() -> None:
        nonlocal reported
        for problem in problems[reported:]:
            if log:
                log(f"predict: skipped {problem}")
        reported = len(problems)

    writer = SideBySideVideo(video, frame_rate(source) or DEFAULT_FPS) if video else None
    nets.depth.to(device).eval()
    done: list[Prediction] = []
    frames = read_frames(source, problems if skipped is not None else None)
    try:
        for batch in _batches(frames, batch_size):
            report_new()
            names, images = zip(*batch, strict=True)
            disps = predict_disparities(nets, list(images), device, post_process)
            for name, image, disp in zip(names, images, disps, strict=True):
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
                done.append(_write_frame(name, image, disp, out, ext, scale, intrinsics, writer))
            report_new()
            if log:
                log(f"predict: {len(done)} frame(s) done, last {names[-1]} -> {out}")
    finally:
        if writer is not None:
            writer.close()
    report_new()
    if writer is not None and log:
        log(f"predict: wrote {writer.frames} frame(s) beside their depth to {writer.path}")
    return done


def _write_frame(
    name: str,
    image: Image.Image,
    disp: torch.Tensor,
    out: Path,
    ext: str,
    scale: float | None,
    intrinsics: CameraIntrinsics | None,
    writer: SideBySideVideo | None,
) -> Prediction:
    pred = Prediction(name, out / f"{name}_disp.npy", out / f"{name}_disp.{ext}")
    with writing(pred.disp):
        np.save(pred.disp, disp[0, 0].numpy())
    picture = depth_picture(disp)
    with writing(pred.picture):
        Image.fromarray(picture).save(pred.picture)
    if scale is not None:
        pred.depth = out / f"{name}_depth.npy"
        depth = (scale / disp[0, 0]).numpy()
        with writing(pred.depth):
            np.save(pred.depth, depth)
        if intrinsics is not None:
            points, colours = point_cloud(depth, np.asarray(image), intrinsics.K)
            comment = f"mono predict {name}: camera frame (x right, y down, z forward), metres"
            comment += f"\nintrinsics {intrinsics.describe()}"
            pred.cloud = write_ply(out / f"{name}.ply", points, colours, comment)
    if writer is not None:
        writer.write(np.asarray(image), picture, name)
    return pred
