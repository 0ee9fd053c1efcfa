"""Offline depth evaluation on KITTI, following Monodepth2's ``evaluate_depth.py`` to the letter.

Predictions are *disparities* (Monodepth2 evaluates the ``scaled_disp`` of ``disp_to_depth``)
at the network size; each is resized bilinearly to its ground truth's size, inverted to depth
and scored with :func:`mono.metrics.evaluate_depth_map`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mono.data.calib import STEREO_SCALE_FACTOR
from mono.data.images import GrayscaleNotice, read_colour_image
from mono.metrics import MAX_DEPTH, METRIC_NAMES, MIN_DEPTH, evaluate_depth_map
from mono.output_files import check_writable_file, check_writable_folder, writing
from mono.progress import progress_bar

# (crop, valid-pixel rule) of each split with ground truth, as Monodepth2 evaluates them.
# "directory" is any split directory (e.g. the synthetic drives): images need not be
# KITTI-shaped, so no Garg crop, and the valid range of training-time validation.
SPLIT_PROTOCOL = {
    "eigen": ("garg", "range"),
    "eigen_benchmark": ("none", "positive"),
    "directory": ("none", "range"),
}
SCALINGS = ("median", "stereo", "none")
BENCHMARK_SIZE = (352, 1216)  # (height, width) of the KITTI depth-prediction test images


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate_disparities`.

    Attributes:
        metrics: metric name -> mean over images.
        per_image: metric name -> (N,) per-image values.
        ratios: (N,) median-scaling ratios (empty without median scaling).
        ratio_median: median of ``ratios`` (NaN without median scaling).
        ratio_std: std of ``ratios / ratio_median``, Monodepth2's scale-consistency figure.
        baseline: mean metrics of the median-scaled constant-depth prediction on the same
            images, when computed (see :func:`evaluate_constant_baseline`).
    """

    metrics: dict[str, float]
    per_image: dict[str, np.ndarray]
    ratios: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ratio_median: float = float("nan")
    ratio_std: float = float("nan")
    baseline: dict[str, float] | None = None


def resize_disparity(disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) -> (height, width) bilinear, half-pixel centres: the same as ``cv2.resize``."""
    t = torch.from_numpy(np.ascontiguousarray(disp, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[
        0, 0
    ].numpy()


def evaluate_disparities(
    pred_disps: np.ndarray | Sequence[np.ndarray],
    gt_depths: Sequence[np.ndarray],
    split: str = "eigen",
    scaling: str = "median",
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    per_image_csv: str | Path | None = None,
    names: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
    crop: str | None = None,
    metric_scale: float = STEREO_SCALE_FACTOR,
) -> EvalResult:
    """Score predicted disparities against exported ground truth (Monodepth2's protocol).

    eigen: Garg crop, min_depth < gt < max_depth. eigen_benchmark: gt > 0, no crop.
    directory (a split directory): min_depth < gt < max_depth, no crop.
    Then pred depth = 1 / disp (resized to the GT size); "stereo" multiplies it by
    ``metric_scale`` without median scaling; "median" scales each image by
    ``median(gt) / median(pred)``; "none" leaves it. Clamped to [min_depth, max_depth].

    Args:
        pred_disps: (N, h, w) disparities (any positive inverse depth).
        gt_depths: N ground-truth depth maps of any sizes (see :func:`load_gt`).
        split: the protocol: "eigen", "eigen_benchmark" or "directory".
        scaling: "median", "stereo" or "none".
        per_image_csv: optional path of a CSV with one row of metrics per image.
        names: optional per-image labels for the CSV (e.g. the split lines).
        log: sink for the "Scaling ratios" line, None for silence.
        crop: "garg" or "none" instead of the protocol's crop; None keeps it.
        metric_scale: factor of "stereo" scaling: the model's metric scale (1 when trained with
            a metric baseline); default Monodepth2's 5.4 for its 0.1 m baseline convention.

    Raises:
        ValueError: unknown split or scaling, count mismatch, or an image without valid GT.
    """
    if split not in SPLIT_PROTOCOL:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_PROTOCOL)}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r}: expected one of {', '.join(SCALINGS)}")
    if len(pred_disps) != len(gt_depths):
        raise ValueError(f"{len(pred_disps)} predictions but {len(gt_depths)} ground-truth maps")
    split_crop, valid = SPLIT_PROTOCOL[split]
    crop = split_crop if crop is None else crop
    fixed_scale = metric_scale if scaling == "stereo" else 1.0
    rows, ratios = [], []
    pairs = zip(pred_disps, gt_depths, strict=True)
    if log is not None:  # a quiet call (the baseline) has no bar either
        pairs = progress_bar(len(gt_depths), "evaluate: scoring", "image", pairs)
    for i, (disp, gt) in enumerate(pairs):
        gt = np.asarray(gt, dtype=np.float32)
        disp = resize_disparity(np.asarray(disp), *gt.shape)
        with np.errstate(divide="ignore"):
            depth = 1.0 / disp
        errors, ratio = evaluate_depth_map(
            depth, gt, crop, scaling == "median", fixed_scale, min_depth, max_depth, valid
        )
        if np.isnan(errors["abs_rel"]):
            raise ValueError(
                f"image {i}: metrics are NaN (no valid ground-truth pixel for split {split!r}, "
                "or a NaN prediction)"
            )
        rows.append(errors)
        ratios.append(ratio)
    per_image = {k: np.array([r[k] for r in rows]) for k in METRIC_NAMES}
    result = EvalResult({k: float(v.mean()) for k, v in per_image.items()}, per_image)
    if scaling == "median":
        result.ratios = np.array(ratios)
        result.ratio_median = float(np.median(result.ratios))
        result.ratio_std = float(np.std(result.ratios / result.ratio_median))
        if log is not None:
            log(f" Scaling ratios | med: {result.ratio_median:0.3f} | std: {result.ratio_std:0.3f}")
    if per_image_csv is not None:
        write_per_image_csv(per_image_csv, result, ratios, names)
    return result


def evaluate_constant_baseline(
    gt_depths: Sequence[np.ndarray], split: str = "eigen", crop: str | None = None
) -> EvalResult:
    """Scores of the median-scaled constant depth (the GT median everywhere), same protocol."""
    ones = np.ones((len(gt_depths), 1, 1), np.float32)
    return evaluate_disparities(ones, gt_depths, split, scaling="median", log=None, crop=crop)


def write_per_image_csv(
    path: str | Path, result: EvalResult, ratios: Sequence[float], names: Sequence[str] | None
) -> None:
    """One row per image: index, name, the metrics and the scaling ratio."""
    path = Path(path)
    check_writable_file(path, "--per-image")
    n = len(ratios)
    with writing(path, "--per-image"), path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "name", *METRIC_NAMES, "ratio"])
        for i in range(n):
            name = names[i] if names is not None else ""
            values = [f"{result.per_image[k][i]:.6f}" for k in METRIC_NAMES]
            writer.writerow([i, name, *values, f"{float(ratios[i]):.6f}"])


def format_table(metrics: dict[str, float]) -> str:
    """Monodepth2's results table: a header row and a LaTeX-ready row of values.

    Columns: abs_rel | sq_rel | rmse | rmse_log | a1 | a2 | a3, plus silog when present.
    """
    names = [k for k in METRIC_NAMES if k in metrics]
    header = "  " + ("{:>8} | " * len(names)).format(*names)
    values = ("&{: 8.3f}  " * len(names)).format(*(metrics[k] for k in names)) + "\\\\"
    return header + "\n" + values


def post_process_disparity(disp, disp_flipped):
    """Monodepth (v1)'s flip-and-blend: the flipped pass fills the left border's occlusions.

    With ``r`` = the flipped prediction mirrored back, the output is ``disp`` on the right
    5 % of columns, ``r`` on the left 5 %, their mean in between, with linear ramps 5 % wide
    (Godard et al., CVPR 2017; Monodepth2's ``batch_post_process_disparity``).

    Args:
        disp: (B, H, W) disparity of the images (numpy array or tensor).
        disp_flipped: (B, H, W) disparity predicted for the horizontally mirrored images,
            still mirrored (as the network returns it).

    Returns:
        (B, H, W) blended disparity, same type as ``disp``.
    """
    as_numpy = isinstance(disp, np.ndarray)
    left = torch.as_tensor(disp)
    right = torch.as_tensor(disp_flipped).to(left).flip(-1)
    h, w = left.shape[-2:]
    x = torch.linspace(0, 1, w, dtype=torch.float64).expand(h, w)
    l_mask = (1.0 - (20.0 * (x - 0.05)).clamp(0, 1)).to(left)
    r_mask = l_mask.flip(-1)
    mean = 0.5 * (left + right)
    out = r_mask * left + l_mask * right + (1.0 - l_mask - r_mask) * mean
    return out.numpy() if as_numpy else out


def load_image(
    path: str | Path, height: int, width: int, grayscale: GrayscaleNotice | None = None
) -> torch.Tensor:
    """(3, height, width) float RGB in [0, 1], resized with LANCZOS like Monodepth2's loader.

    Read with :func:`mono.data.images.read_colour_image` (16-bit grayscale scaled to 8 bits;
    ``grayscale`` is told about grayscale files).

    Raises:
        FileNotFoundError: no such file.
        mono.data.images.ImageDecodeError: the file cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    img = read_colour_image(path, grayscale).resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def batch_disparities(
    predict_fn: Callable[[torch.Tensor], torch.Tensor],
    batch: torch.Tensor,
    post_process: bool = False,
    to_scaled_disp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """(B, 1, h, w) float32 disparities of an image batch (B, 3, h, w) in [0, 1], on the CPU.

    ``post_process`` also predicts the mirrored images and blends the two
    (:func:`post_process_disparity`, Monodepth2's evaluation); ``to_scaled_disp`` maps the
    network's output first (see :func:`predict_disparities`). Evaluation and ``mono predict``
    both predict through here.
    """
    n = batch.shape[0]
    if post_process:
        batch = torch.cat([batch, batch.flip(-1)])
    with torch.no_grad():
        disp = predict_fn(batch)
        if to_scaled_disp is not None:
            disp = to_scaled_disp(disp)
    disp = disp.float().cpu()
    if post_process:
        disp = post_process_disparity(disp[:n, 0], disp[n:, 0])[:, None]
    return disp


def predict_disparities(
    predict_fn: Callable[[torch.Tensor], torch.Tensor],
    image_paths: Sequence[str | Path],
    height: int,
    width: int,
    batch_size: int = 16,
    post_process: bool = False,
    to_scaled_disp: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Disparities of a list of images at the network size.

    Args:
        predict_fn: images (B, 3, height, width) float in [0, 1] -> (B, 1, height, width)
            disparity; called under ``torch.no_grad``.
        image_paths: images to read (PIL, RGB, LANCZOS-resized to (width, height)).
        batch_size: images per call (doubled internally with ``post_process``).
        post_process: also predict the mirrored images and blend
            (:func:`post_process_disparity`).
        to_scaled_disp: maps the network's sigmoid output to the disparity that is evaluated.
            Monodepth2 evaluates ``disp_to_depth(sigmoid, 0.1, 100)[0]``; pass
            ``lambda d: mono.geometry.disp_to_depth(d, min_depth, max_depth)[0]`` unless
            ``predict_fn`` already returns that. None = identity.
        device: where the images are sent before ``predict_fn`` (None: stay on the CPU).

    Returns:
        (N, height, width) float32 disparities.
    """
    out = []
    bar = progress_bar(len(image_paths), "evaluate: predicting", "image")
    grayscale = GrayscaleNotice("the test images")
    for start in range(0, len(image_paths), batch_size):
        batch = torch.stack(
            [
                load_image(p, height, width, grayscale)
                for p in image_paths[start : start + batch_size]
            ]
        )
        if device is not None:
            batch = batch.to(device)
        out.append(batch_disparities(predict_fn, batch, post_process, to_scaled_disp)[:, 0].numpy())
        bar.update(batch.shape[0])
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, height, width), np.float32)


def benchmark_depths(
    pred_disps: np.ndarray,
    scale: float = STEREO_SCALE_FACTOR,
    size: tuple[int, int] = BENCHMARK_SIZE,
    max_depth: float = MAX_DEPTH,
) -> np.ndarray:
    """Depths for the KITTI server as Monodepth2 makes them: resize, ``scale / disp``, clip."""
    out = np.empty((len(pred_disps), *size), np.float32)
    for i, disp in enumerate(pred_disps):
        with np.errstate(divide="ignore"):
            out[i] = np.clip(scale / resize_disparity(disp, *size), 0, max_depth)
    return out


def write_benchmark_pngs(
    pred_depths: np.ndarray | Sequence[np.ndarray], out_dir: str | Path
) -> Path:
    """Write KITTI depth-benchmark submissions: ``%010d.png``, uint16 of depth * 256.

    Args:
        pred_depths: N depth maps in metres (at the test images' 352 x 1216 size).
        out_dir: folder to create; zip its PNGs for the server.
    """
    out_dir = check_writable_folder(out_dir, "--benchmark-out")
    for i, depth in enumerate(pred_depths):
        # Truncation, not rounding, matches Monodepth2's np.uint16(depth * 256).
        png = np.clip(np.nan_to_num(np.asarray(depth, np.float64) * 256.0), 0, 65535).astype(
            np.uint16
        )
        with writing(out_dir / f"{i:010d}.png", "benchmark PNG"):
            Image.fromarray(png).save(out_dir / f"{i:010d}.png")
    return out_dir
