"""Pose evaluation on KITTI odometry: ATE over 5-frame snippets, Monodepth2's protocol.

Monodepth2's ``evaluate_pose.py`` (itself from SfMLearner, Zhou et al., CVPR 2017) predicts
the transform of every consecutive pair (t, t+1), chains 4 of them into a 5-frame snippet
starting at every frame, does the same with the ground truth, aligns the first positions,
fits one scale by least squares and reports the mean and std of the per-snippet error, in
metres (the unit of the ground-truth poses).

Beside it, :func:`constant_velocity_baseline` scores a predictor that knows the mean true
motion of the sequence and nothing per frame: the reference a model's number is read against.
(A zero-motion predictor cannot serve: the least-squares scale of an all-zero trajectory is 0/0.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mono.data.errors import DataFormatError, read_text_file
from mono.evaluation.depth import load_image

# Printed under the two result lines, so that the numbers read on their own.
PROTOCOL_NOTE = (
    "(ATE of 5-frame snippets after per-snippet scale alignment, as Monodepth2; the baseline "
    "predicts every frame pair as the mean true motion of the sequence)"
)


@dataclass
class PoseResult:
    """ATE of every snippet, their mean and (population) std, and the predicted poses.

    Attributes:
        ates: (N - 1,) error in metres of the snippet starting at each frame (the last ones are
            shorter).
        ate_mean, ate_std: Monodepth2's "Trajectory error" and its std, in metres.
        pred_poses: (N - 1, 4, 4) predicted ``T_{t+1, t}`` (may be empty when not predicted).
        baseline: the same scores of :func:`constant_velocity_baseline`, when computed.
    """

    ates: np.ndarray
    ate_mean: float
    ate_std: float
    pred_poses: np.ndarray
    baseline: PoseResult | None = None


def read_odometry_poses(path: str | Path) -> np.ndarray:
    """KITTI odometry poses file (a row-major 3 x 4 ``camera-t -> world`` per line): (N, 4, 4).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not UTF-8 text, or a line without 12 finite numbers (file:line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"odometry poses not found: {path}")
    poses = []
    for i, line in enumerate(read_text_file(path).splitlines()):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 12 or not np.isfinite(values).all():
            raise DataFormatError(
                f"{path}:{i + 1}: expected 12 finite numbers (a 3 x 4 pose), got {line!r}"
            )
        pose = np.eye(4)
        pose[:3] = np.reshape(values, (3, 4))
        poses.append(pose)
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


def compute_ate(gt_xyz: np.ndarray, pred_xyz: np.ndarray) -> float:
    """SfMLearner's snippet ATE: align first positions, best scale, then ``||e||_F / n``.

    The scale is ``sum(gt * pred) / sum(pred^2)`` after the offset. Note the error is the
    *root of the summed* squared error divided by the number of frames n (not a root mean
    square), exactly as the reference computes it.

    Args:
        gt_xyz: (n, 3) ground-truth positions of a snippet.
        pred_xyz: (n, 3) predicted positions.
    """
    gt_xyz, pred_xyz = np.asarray(gt_xyz, np.float64), np.asarray(pred_xyz, np.float64)
    if gt_xyz.shape != pred_xyz.shape or gt_xyz.ndim != 2 or gt_xyz.shape[1] != 3:
        raise ValueError(
            f"compute_ate: need two (n, 3) arrays, got {gt_xyz.shape}, {pred_xyz.shape}"
        )
    pred = pred_xyz + (gt_xyz[0] - pred_xyz[0])[None]
    scale = np.sum(gt_xyz * pred) / np.sum(pred**2)
    return float(np.sqrt(np.sum((pred * scale - gt_xyz) ** 2)) / gt_xyz.shape[0])


def chain_positions(transforms: np.ndarray) -> np.ndarray:
    """(k, 4, 4) -> (k + 1, 3): translations of I, A0, A0 A1, ... (SfMLearner's ``dump_xyz``).

    Right-multiplying the ``T_{t+1, t}`` as the reference does is not a physical composition,
    but ground truth and prediction go through the same map, so the comparison is fair and the
    numbers are the published ones.
    """
    acc = np.eye(4)
    xyz = [acc[:3, 3].copy()]
    for T in transforms:
        acc = acc @ T
        xyz.append(acc[:3, 3].copy())
    return np.stack(xyz)


def relative_poses(gt_global_poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) ``camera-t -> world`` -> (N - 1, 4, 4) ``T_{t+1, t}``, as the predictions."""
    gt = np.asarray(gt_global_poses, np.float64)
    # T_{t+1, t} maps camera-t points into camera t+1: inv(G_{t+1}) G_t = inv(inv(G_t) G_{t+1}).
    return np.linalg.inv(np.linalg.inv(gt[:-1]) @ gt[1:])


def mean_motion(transforms: np.ndarray) -> np.ndarray:
    """The mean of (k, 4, 4) rigid transforms: mean translation, chordal mean rotation.

    The rotation is the element-wise mean of the rotation matrices projected back onto SO(3)
    (nearest rotation in the Frobenius norm, by SVD); for one repeated transform it is that
    transform.
    """
    transforms = np.asarray(transforms, np.float64)
    mean = np.eye(4)
    u, _, vt = np.linalg.svd(transforms[:, :3, :3].mean(0))
    d = np.sign(np.linalg.det(u @ vt))  # a proper rotation, never a reflection
    mean[:3, :3] = u @ np.diag([1.0, 1.0, d]) @ vt
    mean[:3, 3] = transforms[:, :3, 3].mean(0)
    return mean


def constant_velocity_baseline(gt_global_poses: np.ndarray, snippet: int = 5) -> PoseResult:
    """:func:`snippet_ate` of a predictor that outputs, for every frame pair, the mean true
    motion of the sequence (:func:`mean_motion` of all ground-truth ``T_{t+1, t}``).

    Knowing the sequence's average speed and turn rate but nothing per frame, it is exact on a
    drive at constant velocity and errs where the drive turns or changes speed.
    """
    gt_local = relative_poses(gt_global_poses)
    constant = np.tile(mean_motion(gt_local), (len(gt_local), 1, 1))
    return snippet_ate(constant, gt_global_poses, snippet)


def snippet_ate(
    pred_relative_poses: np.ndarray, gt_global_poses: np.ndarray, snippet: int = 5
) -> PoseResult:
    """Mean and std ATE over all snippets of ``snippet`` frames (Monodepth2's evaluate_pose).

    Args:
        pred_relative_poses: (N - 1, 4, 4) predicted ``T_{t+1, t}``: maps points of camera t
            into camera t+1 (``T_src_tgt`` with target t, source t + 1).
        gt_global_poses: (N, 4, 4) ground-truth ``camera-t -> world`` (KITTI poses file).
        snippet: frames per snippet (5 in the reference).

    Returns:
        :class:`PoseResult`; one snippet starts at each of frames 0 .. N - 2, the last few
        being shorter, as in the reference.
    """
    pred = np.asarray(pred_relative_poses, np.float64)
    gt = np.asarray(gt_global_poses, np.float64)
    if pred.shape[0] != gt.shape[0] - 1:
        raise ValueError(
            f"{pred.shape[0]} predicted relative poses for {gt.shape[0]} ground-truth poses "
            "(expected one fewer)"
        )
    gt_local = relative_poses(gt)
    ates = np.array(
        [
            compute_ate(
                chain_positions(gt_local[i : i + snippet - 1]),
                chain_positions(pred[i : i + snippet - 1]),
            )
            for i in range(gt.shape[0] - 1)
        ]
    )
    return PoseResult(ates, float(np.mean(ates)), float(np.std(ates)), pred)


def odometry_image_path(
    odom_root: str | Path, sequence: int, frame: int, img_ext: str = "auto"
) -> Path:
    """``<odom_root>/sequences/<NN>/image_2/<frame:06d>.<ext>``; "auto": png, else jpg."""
    stem = Path(odom_root) / "sequences" / f"{sequence:02d}" / "image_2" / f"{frame:06d}"
    return _with_ext(stem, img_ext)


def _with_ext(stem: Path, img_ext: str) -> Path:
    if img_ext != "auto":
        return stem.with_suffix("." + img_ext.lstrip("."))
    png = stem.with_suffix(".png")
    return (
        png if png.is_file() or not stem.with_suffix(".jpg").is_file() else stem.with_suffix(".jpg")
    )


def odometry_frames(
    odom_root: str | Path, sequence: int, img_ext: str = "auto"
) -> tuple[list[Path], np.ndarray]:
    """Images and ground-truth poses of a KITTI odometry sequence (``poses/<NN>.txt``)."""
    gt = read_odometry_poses(Path(odom_root) / "poses" / f"{sequence:02d}.txt")
    return [odometry_image_path(odom_root, sequence, t, img_ext) for t in range(len(gt))], gt


def raw_drive_frames(
    data_root: str | Path, drive: str, img_ext: str = "auto"
) -> tuple[list[Path], np.ndarray]:
    """Images and ground-truth poses of a drive in the KITTI raw layout.

    Reads ``<data_root>/<drive>/poses.txt`` (camera 2 -> world, the odometry format; the
    synthetic drives write it, real KITTI raw drives do not) and the camera-2 frames
    ``<drive>/image_02/data/<t:010d>.<ext>``.

    Args:
        drive: ``<date>/<drive folder>``, e.g. ``2011_01_01/2011_01_01_drive_0004_sync``.
    """
    folder = Path(data_root) / drive
    poses_file = folder / "poses.txt"
    if not poses_file.is_file():
        raise FileNotFoundError(
            f"{poses_file} not found: --drive needs camera poses in the odometry format "
            "(the synthetic drives write them; KITTI raw drives have none: use the odometry "
            "layout with --sequence)"
        )
    gt = read_odometry_poses(poses_file)
    stem = folder / "image_02" / "data"
    return [_with_ext(stem / f"{t:010d}", img_ext) for t in range(len(gt))], gt


def evaluate_pose_frames(
    predict_pose_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    image_paths: list[Path],
    gt_poses: np.ndarray,
    height: int,
    width: int,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    log: Callable[[str], None] | None = print,
) -> PoseResult:
    """Predict every consecutive pair of a frame sequence and score 5-frame snippets.

    Args:
        predict_pose_fn: ``(frames_t, frames_t1)``, both (B, 3, height, width) in [0, 1] ->
            (B, 4, 4) ``T_{t+1, t}`` mapping camera-t points into camera t+1: the pose net's
            ``T_src_tgt`` for target t and source t + 1 (Monodepth2 feeds ``[t, t+1]`` and uses
            ``transformation_from_parameters(axisangle[:, 0], translation[:, 0])`` uninverted).
            Called under ``torch.no_grad``.
        image_paths: the N frames in temporal order.
        gt_poses: (N, 4, 4) ground-truth ``camera-t -> world``.
        height, width: network input size (LANCZOS resize, like the depth evaluation).
        device: where frames go before ``predict_pose_fn``.
        log: sink for the result lines (model and baseline ATE in metres), None for silence.
    """
    if len(image_paths) != len(gt_poses) or len(gt_poses) < 2:
        raise ValueError(
            f"pose evaluation needs >= 2 frames with one pose each, got {len(image_paths)} "
            f"images and {len(gt_poses)} poses"
        )
    n_pairs = len(gt_poses) - 1
    preds = []
    for start in range(0, n_pairs, batch_size):
        stop = min(start + batch_size, n_pairs)
        frames = torch.stack(
            [load_image(image_paths[t], height, width) for t in range(start, stop + 1)]
        )
        if device is not None:
            frames = frames.to(device)
        with torch.no_grad():
            T = predict_pose_fn(frames[:-1], frames[1:])
        preds.append(T.double().cpu().numpy())
    result = snippet_ate(np.concatenate(preds), gt_poses)
    result.baseline = base = constant_velocity_baseline(gt_poses)
    if log is not None:
        log(
            f"\n   Trajectory error: {result.ate_mean:0.3f} m, std: {result.ate_std:0.3f} m"
            f"\n   Constant-velocity baseline: {base.ate_mean:0.3f} m, std: {base.ate_std:0.3f} m"
            f"\n   {PROTOCOL_NOTE}\n"
        )
    return result


def evaluate_pose_sequence(
    predict_pose_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    odom_root: str | Path,
    sequence: int,
    height: int,
    width: int,
    batch_size: int = 16,
    img_ext: str = "auto",
    device: torch.device | str | None = None,
    log: Callable[[str], None] | None = print,
) -> PoseResult:
    """:func:`evaluate_pose_frames` on KITTI odometry sequence ``sequence`` (9 and 10 are
    Monodepth2's), from ``<odom_root>/sequences/<NN>/image_2`` and ``poses/<NN>.txt``."""
    paths, gt = odometry_frames(odom_root, sequence, img_ext)
    return evaluate_pose_frames(predict_pose_fn, paths, gt, height, width, batch_size, device, log)
