"""KITTI evaluation (no Lightning): ground truth, depth metrics per split, pose ATE, commands.

Modules: ``gt`` (split lines, image paths, ground-truth export), ``depth`` (Monodepth2's depth
protocol), ``pose`` (Monodepth2's odometry ATE), ``commands`` (plain-argument entry points),
``folder`` (your own images and depth maps), ``cli`` (the arguments of ``mono export-gt |
evaluate | evaluate-pose``). The metrics themselves live in :mod:`mono.metrics`, shared with
validation during training.

The names below are imported on first use, so ``mono --help`` (which imports ``cli``) does
not pay for torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "cmd_evaluate": "commands",
    "cmd_evaluate_folder": "folder",
    "cmd_evaluate_pose": "commands",
    "cmd_export_gt": "commands",
    "disparity_predictor": "commands",
    "pose_predictor": "commands",
    "EvalResult": "depth",
    "benchmark_depths": "depth",
    "evaluate_constant_baseline": "depth",
    "evaluate_disparities": "depth",
    "format_table": "depth",
    "post_process_disparity": "depth",
    "predict_disparities": "depth",
    "write_benchmark_pngs": "depth",
    "default_gt_path": "gt",
    "export_gt": "gt",
    "load_gt": "gt",
    "test_image_paths": "gt",
    "PoseResult": "pose",
    "compute_ate": "pose",
    "constant_velocity_baseline": "pose",
    "evaluate_pose_frames": "pose",
    "evaluate_pose_sequence": "pose",
    "mean_motion": "pose",
    "raw_drive_frames": "pose",
    "read_odometry_poses": "pose",
    "snippet_ate": "pose",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mono.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mono.evaluation.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
