"""Evaluation on your own folder: images + ground-truth depth (+ masks), matched by file stem.

``mono evaluate --ckpt X --images DIR --gt DIR [--gt-scale 256] [--mask DIR]`` scores a model
with the same metric code and table as the KITTI protocol (:mod:`mono.evaluation.depth`,
:mod:`mono.metrics`), the "directory" protocol: no crop unless ``--crop garg``, ground truth
in (1e-3, 80) m.

Ground truth: a PNG of integers (KITTI's uint16, depth x ``gt_scale``, 0 = no depth) or a
``.npy`` of metres (NaN, inf and values <= 0 = no depth). A mask (any image, or ``.npy``)
keeps the pixels where it is non-zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mono.data.calib import STEREO_SCALE_FACTOR
from mono.evaluation.depth import (
    EvalResult,
    evaluate_constant_baseline,
    evaluate_disparities,
    format_table,
    predict_disparities,
)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
DEPTH_EXTS = (".png", ".npy")
MASK_EXTS = (*IMAGE_EXTS, ".npy")
_LISTED = 5


@dataclass(frozen=True)
class FolderSample:
    """One scored image: its ground-truth depth file and optional mask file."""

    name: str
    image: Path
    gt: Path
    mask: Path | None = None


def _by_stem(folder: Path, exts: Sequence[str], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} {folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in exts:
            continue
        if path.stem in found:
            raise ValueError(
                f"{what} {folder}: {found[path.stem].name} and {path.name} have the same "
                "name; files are matched by name without the extension"
            )
        found[path.stem] = path
    return found


def _names(stems: Sequence[str]) -> str:
    more = f", ... ({len(stems) - _LISTED} more)" if len(stems) > _LISTED else ""
    return ", ".join(stems[:_LISTED]) + more


def match_folder(
    images: str | Path, gt: str | Path, mask: str | Path | None = None
) -> list[FolderSample]:
    """Every image of ``images`` with the ground truth (and mask) of the same stem, by name.

    Raises:
        FileNotFoundError: a folder is missing or holds no images, or an image has no ground
            truth or mask (the first few are named). Ground truth without an image is ignored.
    """
    found = _by_stem(Path(images), IMAGE_EXTS, "--images")
    if not found:
        raise FileNotFoundError(f"--images {images}: no images ({', '.join(IMAGE_EXTS)})")
    depths = _by_stem(Path(gt), DEPTH_EXTS, "--gt")
    masks = _by_stem(Path(mask), MASK_EXTS, "--mask") if mask is not None else None
    for folder, table, what in ((gt, depths, "ground truth"), (mask, masks, "mask")):
        if table is None:
            continue
        missing = [stem for stem in found if stem not in table]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(found)} images have no {what} of the same name in "
                f"{folder}: {_names(missing)}"
            )
    return [
        FolderSample(stem, path, depths[stem], masks[stem] if masks is not None else None)
        for stem, path in found.items()
    ]


def read_gt_depth(path: Path, gt_scale: float) -> np.ndarray:
    """(H, W) float32 metres, 0 where there is no depth.

    Raises:
        ValueError: an 8-bit or colour PNG (depth needs 16-bit integers), or a ``.npy`` that
            is not a 2-D array of numbers.
    """
    if path.suffix.lower() == ".npy":
        depth = np.load(path, allow_pickle=False)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
            raise ValueError(f"{path}: expected an (H, W) array of depths in metres")
        depth = depth.astype(np.float32)
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    with Image.open(path) as img:
        if img.mode not in ("I;16", "I;16B", "I"):
            raise ValueError(
                f"{path}: PNG mode {img.mode}; depth PNGs hold 16-bit integers (depth x "
                f"--gt-scale, KITTI's uint16 x 256), or give .npy files in metres"
            )
        return np.asarray(img, dtype=np.float32) / gt_scale


def read_mask(path: Path) -> np.ndarray:
    """(H, W) bool, True where the mask is non-zero (any channel)."""
    if path.suffix.lower() == ".npy":
        mask = np.load(path, allow_pickle=False)
    else:
        with Image.open(path) as img:
            mask = np.asarray(img)
    return (mask.reshape(*mask.shape[:2], -1) != 0).any(axis=-1)


def load_folder_gt(samples: Sequence[FolderSample], gt_scale: float) -> list[np.ndarray]:
    """Ground-truth depth of each sample, masked pixels set to 0 (not scored)."""
    if not gt_scale > 0:
        raise ValueError(f"--gt-scale {gt_scale:g}: must be positive")
    depths = []
    for sample in samples:
        depth = read_gt_depth(sample.gt, gt_scale)
        if sample.mask is not None:
            mask = read_mask(sample.mask)
            if mask.shape != depth.shape:
                raise ValueError(
                    f"{sample.mask}: mask {mask.shape[1]}x{mask.shape[0]} but ground truth "
                    f"{sample.gt.name} is {depth.shape[1]}x{depth.shape[0]}"
                )
            depth = np.where(mask, depth, 0.0).astype(np.float32)
        depths.append(depth)
    return depths


def report_scores(
    pred_disps: np.ndarray,
    gt_depths: Sequence[np.ndarray],
    protocol: str,
    scaling: str,
    metric_scale: float,
    crop: str | None = None,
    per_image_csv: str | Path | None = None,
    names: Sequence[str] | None = None,
    baseline: bool = True,
    log: Callable[[str], None] = print,
) -> EvalResult:
    """Score disparities and print the table, then the constant-depth baseline's."""
    if scaling == "stereo":
        log(f"   Stereo evaluation - no median scaling, depth scaled by {metric_scale:g}")
    else:
        log(f"   Mono evaluation - {'using median' if scaling == 'median' else 'no'} scaling")
    result = evaluate_disparities(
        pred_disps,
        gt_depths,
        protocol,
        scaling,
        metric_scale=metric_scale,
        per_image_csv=per_image_csv,
        names=names,
        log=log,
        crop=crop,
    )
    log("\n" + format_table(result.metrics))
    if baseline:
        result.baseline = evaluate_constant_baseline(gt_depths, protocol, crop).metrics
        log("constant depth (median-scaled):\n" + format_table(result.baseline))
    if per_image_csv is not None:
        log(f"-> Per-image metrics saved to {per_image_csv}")
    return result


def cmd_evaluate_folder(
    images: str | Path,
    gt: str | Path,
    predict_fn: Callable[[torch.Tensor], torch.Tensor],
    height: int,
    width: int,
    *,
    mask: str | Path | None = None,
    gt_scale: float = 256.0,
    scaling: str = "median",
    metric_scale: float = STEREO_SCALE_FACTOR,
    post_process: bool = False,
    to_scaled_disp: Callable[[torch.Tensor], torch.Tensor] | None = None,
    crop: str | None = None,
    per_image_csv: str | Path | None = None,
    save_disps: str | Path | None = None,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    baseline: bool = True,
    log: Callable[[str], None] | None = print,
) -> EvalResult:
    """``mono evaluate --images DIR --gt DIR``: a model on your own images and depth maps.

    Files are matched by name without extension (:func:`match_folder`); the ground truth is
    read before any prediction, so a missing or unreadable file fails at once. Scored with the
    "directory" protocol (no crop unless ``crop="garg"``) and printed as :func:`cmd_evaluate`
    prints, with the constant-depth baseline.

    Args:
        images, gt, mask: the folders; see :mod:`mono.evaluation.folder`.
        gt_scale: PNG value of one metre (KITTI: 256).
        Other arguments: as :func:`cmd_evaluate`.
    """
    log = log or (lambda _msg: None)
    samples = match_folder(images, gt, mask)
    gt_depths = load_folder_gt(samples, gt_scale)
    log(f"-> Computing predictions with size {width}x{height} for {len(samples)} images")
    pred_disps = predict_disparities(
        predict_fn, [s.image for s in samples], height, width, batch_size, post_process,
        to_scaled_disp, device,
    )  # fmt: skip
    if save_disps is not None:
        np.save(save_disps, pred_disps)
        log(f"-> Saved predicted disparities to {save_disps}")
    masked = " and masks" if mask is not None else ""
    log(f"-> Evaluating {images} (ground truth{masked} from {gt}, {len(samples)} images)")
    return report_scores(
        pred_disps, gt_depths, "directory", scaling, metric_scale, crop, per_image_csv,
        [s.name for s in samples], baseline, log,
    )  # fmt: skip
