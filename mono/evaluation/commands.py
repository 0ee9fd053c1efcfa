"""The evaluation commands with plain arguments; ``mono.tools`` wires them to ``mono``'s parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mono.evaluation.depth import (
    EvalResult,
    benchmark_depths,
    evaluate_constant_baseline,
    evaluate_disparities,
    format_table,
    predict_disparities,
    write_benchmark_pngs,
)
from mono.evaluation.gt import (
    SPLITS_DIR,
    default_gt_path,
    export_gt,
    load_gt,
    read_split,
    split_file,
    test_image_paths,
)
from mono.evaluation.pose import PoseResult, evaluate_pose_sequence

Log = Callable[[str], None] | None


def cmd_export_gt(data: str | Path, split: str = "eigen", out: str | Path | None = None) -> Path:
    """``mono export-gt --data ROOT --split eigen [--out FILE]``: see :func:`export_gt`."""
    return export_gt(data, split, out)


def cmd_evaluate(
    data: str | Path | None = None,
    split: str = "eigen",
    *,
    predict_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    height: int | None = None,
    width: int | None = None,
    ext_disp: str | Path | None = None,
    scaling: str = "median",
    post_process: bool = False,
    to_scaled_disp: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gt_path: str | Path | None = None,
    per_image_csv: str | Path | None = None,
    eigen_to_benchmark: bool = False,
    save_disps: str | Path | None = None,
    benchmark_out: str | Path = "benchmark_predictions",
    img_ext: str = "auto",
    batch_size: int = 16,
    device: torch.device | str | None = None,
    baseline: bool = True,
    log: Log = print,
) -> EvalResult | Path:
    """``mono evaluate``: predict (or load) disparities for a split and score or export them.

    Give exactly one source of disparities: ``predict_fn`` (+ ``data``, ``height``, ``width``;
    see :func:`predict_disparities`) or ``ext_disp``, a ``.npy`` of (N, h, w) disparities
    (Monodepth2's ``--ext_disp_to_eval``).

    Args:
        data: KITTI raw root (images; default location of the ground truth).
        split: "eigen", "eigen_benchmark" or "benchmark" (no ground truth: PNGs for the
            server are written to ``benchmark_out``, depth = 5.4 / disp as in Monodepth2).
        scaling: "median", "stereo" or "none" (:func:`evaluate_disparities`).
        gt_path: exported ground truth; default ``<data>/gt_depths_<split>.npz``.
        per_image_csv: optional per-image metrics file.
        eigen_to_benchmark: ``ext_disp`` holds the 697 Eigen predictions: keep the 652 that
            the Eigen-benchmark split scores (``splits/benchmark/eigen_to_benchmark_ids.npy``).
        save_disps: optional ``.npy`` to save the disparities to.
        baseline: also score the median-scaled constant depth (``result.baseline``).
        log: sink for progress and tables, None for silence.

    Returns:
        The :class:`EvalResult`, or the PNG folder for the benchmark split.
    """
    log = log or (lambda _msg: None)
    split_file(split)  # unknown split: fail before any work
    if (predict_fn is None) == (ext_disp is None):
        raise ValueError("cmd_evaluate: give exactly one of predict_fn and ext_disp")
    if ext_disp is not None:
        log(f"-> Loading predictions from {ext_disp}")
        pred_disps = np.load(ext_disp)
        if eigen_to_benchmark:
            pred_disps = pred_disps[
                np.load(SPLITS_DIR / "benchmark" / "eigen_to_benchmark_ids.npy")
            ]
    else:
        if data is None or height is None or width is None:
            raise ValueError("cmd_evaluate: predict_fn needs data, height and width")
        paths = test_image_paths(data, split, img_ext)
        log(f"-> Computing predictions with size {width}x{height} for {len(paths)} images")
        pred_disps = predict_disparities(
            predict_fn, paths, height, width, batch_size, post_process, to_scaled_disp, device
        )
    if save_disps is not None:
        np.save(save_disps, pred_disps)
        log(f"-> Saved predicted disparities to {save_disps}")
    if split == "benchmark":
        out = write_benchmark_pngs(benchmark_depths(pred_disps), benchmark_out)
        log(f"-> Saved benchmark predictions to {out} (no ground truth: not evaluated)")
        return out
    if gt_path is None:
        if data is None:
            raise ValueError("cmd_evaluate: give data or gt_path to locate the ground truth")
        gt_path = default_gt_path(data, split)
    gt_depths = load_gt(gt_path, data, split)
    log(f"-> Evaluating {split} ({scaling} scaling)")
    lines = read_split(split)
    names = lines if len(lines) == len(pred_disps) else None
    result = evaluate_disparities(
        pred_disps, gt_depths, split, scaling, per_image_csv=per_image_csv, names=names, log=log
    )
    log("\n" + format_table(result.metrics))
    if baseline:
        result.baseline = evaluate_constant_baseline(gt_depths, split).metrics
        log("constant depth (median-scaled):\n" + format_table(result.baseline))
    return result


def cmd_evaluate_pose(
    predict_pose_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    odom_root: str | Path,
    sequence: int,
    height: int,
    width: int,
    batch_size: int = 16,
    img_ext: str = "auto",
    device: torch.device | str | None = None,
    save_poses: str | Path | None = None,
    log: Log = print,
) -> PoseResult:
    """``mono evaluate-pose``: :func:`evaluate_pose_sequence`, optionally saving the poses."""
    result = evaluate_pose_sequence(
        predict_pose_fn, odom_root, sequence, height, width, batch_size, img_ext, device, log
    )
    if save_poses is not None:
        np.save(save_poses, result.pred_poses)
        if log is not None:
            log(f"-> Predictions saved to {save_poses}")
    return result
