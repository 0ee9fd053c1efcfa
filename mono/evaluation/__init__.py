"""KITTI evaluation (no Lightning): ground truth, depth metrics per split, pose ATE, commands.

Modules: ``gt`` (split lines, image paths, ground-truth export), ``depth`` (Monodepth2's depth
protocol), ``pose`` (Monodepth2's odometry ATE), ``commands`` (plain-argument entry points).
The metrics themselves live in :mod:`mono.metrics`, shared with validation during training.
"""

from mono.evaluation.commands import cmd_evaluate, cmd_evaluate_pose, cmd_export_gt
from mono.evaluation.depth import (
    EvalResult,
    benchmark_depths,
    evaluate_constant_baseline,
    evaluate_disparities,
    format_table,
    post_process_disparity,
    predict_disparities,
    write_benchmark_pngs,
)
from mono.evaluation.gt import default_gt_path, export_gt, load_gt, test_image_paths
from mono.evaluation.pose import (
    PoseResult,
    compute_ate,
    evaluate_pose_sequence,
    read_odometry_poses,
    snippet_ate,
)

__all__ = [
    "EvalResult",
    "PoseResult",
    "benchmark_depths",
    "cmd_evaluate",
    "cmd_evaluate_pose",
    "cmd_export_gt",
    "compute_ate",
    "default_gt_path",
    "evaluate_constant_baseline",
    "evaluate_disparities",
    "evaluate_pose_sequence",
    "export_gt",
    "format_table",
    "load_gt",
    "post_process_disparity",
    "predict_disparities",
    "read_odometry_poses",
    "snippet_ate",
    "test_image_paths",
    "write_benchmark_pngs",
]
