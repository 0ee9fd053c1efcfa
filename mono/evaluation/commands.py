"""The evaluation commands with plain arguments; ``mono.evaluation.cli`` wires them to ``mono``.

Also the glue from loaded networks (:class:`mono.checkpoint.LoadedNetworks`) to the
prediction callables the protocols take: :func:`disparity_predictor` and :func:`pose_predictor`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mono.data.calib import STEREO_SCALE_FACTOR
from mono.evaluation.depth import (
    SPLIT_PROTOCOL,
    EvalResult,
    benchmark_depths,
    predict_disparities,
    write_benchmark_pngs,
)
from mono.evaluation.folder import report_scores
from mono.evaluation.gt import (
    SPLITS_DIR,
    default_gt_path,
    export_command,
    export_gt,
    load_gt,
    resolve_gt_kind,
    split_file,
    test_image_paths,
    test_split_lines,
)
from mono.evaluation.pose import (
    PoseResult,
    evaluate_pose_frames,
    odometry_frames,
    raw_drive_frames,
)
from mono.geometry import disp_to_depth
from mono.output_files import check_writable_file, check_writable_folder, writing

if TYPE_CHECKING:
    from mono.checkpoint import LoadedNetworks

Log = Callable[[str], None] | None


def disparity_predictor(
    nets: LoadedNetworks,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """``(predict_fn, to_scaled_disp)`` for :func:`predict_disparities` from loaded networks.

    ``predict_fn`` returns the full-resolution sigmoid disparity ``disps[0]``;
    ``to_scaled_disp`` maps it through ``disp_to_depth(., min_depth, max_depth)[0]``, the
    disparity Monodepth2 evaluates.
    """

    def predict_fn(images: torch.Tensor) -> torch.Tensor:
        return nets.depth(images).disps[0]

    def to_scaled_disp(disp: torch.Tensor) -> torch.Tensor:
        return disp_to_depth(disp, nets.min_depth, nets.max_depth)[0]

    return predict_fn, to_scaled_disp


def pose_predictor(nets: LoadedNetworks) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``predict_pose_fn`` for :func:`evaluate_pose_frames`: ``(frames_t, frames_t1) -> T_{t+1,t}``.

    The pair goes into the pose network in temporal order and the transform is used
    uninverted, as training does for a future source frame (``T_src_tgt``, target t, source
    t + 1) and as Monodepth2's ``evaluate_pose.py`` does. A ``"shared"`` pose network gets
    the depth encoder's features of each frame.

    Raises:
        ValueError: the networks have no pose network (e.g. a stereo-only model).
    """
    pose_net = nets.pose
    if pose_net is None:
        raise ValueError(
            f"{nets.source or 'the checkpoint'} has no pose network (trained with frame_ids "
            f"{nets.frame_ids}); pose evaluation needs a model trained on temporal frames"
        )
    encode = nets.depth.encode if pose_net.kind == "shared" else None

    def predict(frames_t: torch.Tensor, frames_t1: torch.Tensor) -> torch.Tensor:
        return pose_net.transforms(frames_t, [frames_t1], [1], encode=encode)[:, 0]

    return predict


def load_ext_disp(path: str | Path) -> np.ndarray:
    """Another method's disparities: a ``.npy`` of (N, h, w) finite, non-negative numbers.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a numeric ``.npy`` array, another shape, or a NaN, infinite or negative
            value (counted, with the first map that holds one); the file is named.
    """
    try:
        disps = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise FileNotFoundError(f"--ext-disp {path}: no such file") from None
        raise ValueError(f"{path}: not a .npy array of disparities ({err})") from None
    if not isinstance(disps, np.ndarray) or not (
        np.issubdtype(disps.dtype, np.floating) or np.issubdtype(disps.dtype, np.integer)
    ):
        raise ValueError(f"{path}: not a .npy array of real numbers (N, h, w)")
    if disps.ndim != 3:
        raise ValueError(f"{path}: expected (N, h, w) disparities, got shape {disps.shape}")
    # A NaN or negative disparity would be scored as a depth (or, in the benchmark PNGs,
    # clipped to 0) without a word.
    for bad, what in (
        (~np.isfinite(disps), "non-finite values (NaN or inf)"),
        (disps < 0, "negative values"),
    ):
        if bad.any():
            first = int(np.argmax(bad.reshape(len(disps), -1).any(axis=1)))
            hint = "; disparities are >= 0" if what == "negative values" else ""
            raise ValueError(f"{path}: {int(bad.sum())} {what}, the first in map {first}{hint}")
    return disps


def cmd_export_gt(
    data: str | Path, split: str = "eigen", out: str | Path | None = None, kind: str | None = None
) -> Path:
    """``mono export-gt --data ROOT --split SPLIT [--out FILE]``: see :func:`export_gt`."""
    return export_gt(data, split, out, kind=kind)


def cmd_evaluate(
    data: str | Path | None = None,
    split: str = "eigen",
    *,
    predict_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    height: int | None = None,
    width: int | None = None,
    ext_disp: str | Path | None = None,
    scaling: str = "median",
    metric_scale: float = STEREO_SCALE_FACTOR,
    post_process: bool = False,
    to_scaled_disp: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gt_path: str | Path | None = None,
    gt_kind: str | None = None,
    crop: str | None = None,
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
    (Monodepth2's ``--ext_disp_to_eval``). The ground truth is loaded before any prediction,
    so a missing file fails at once (with the export command to run).

    Args:
        data: KITTI raw root (images; default location of the ground truth).
        split: "eigen", "eigen_benchmark", "benchmark" (no ground truth: PNGs for the
            server are written to ``benchmark_out``, depth = ``metric_scale`` / disp) or
            a split directory holding ``test_files.txt`` (scored without the Garg crop, see
            :data:`SPLIT_PROTOCOL`).
        scaling: "median", "stereo" or "none" (:func:`evaluate_disparities`).
        metric_scale: metres per unit of predicted depth, the factor of "stereo" scaling and
            of the benchmark PNGs: the model's :attr:`LoadedNetworks.metric_scale`, or
            Monodepth2's 5.4 (its 0.1 m stereo convention).
        gt_path: exported ground truth; default :func:`default_gt_path`.
        gt_kind: "velodyne", "camera" or "dense"; None = the split's default.
        crop: "garg" or "none" instead of the split's crop.
        per_image_csv: optional per-image metrics file.
        eigen_to_benchmark: ``ext_disp`` holds the 697 Eigen predictions: keep the 652 that
            the Eigen-benchmark split scores (``splits/benchmark/eigen_to_benchmark_ids.npy``).
        save_disps: optional ``.npy`` to save the disparities to.
        baseline: also score the median-scaled constant depth (``result.baseline``).
        log: sink for progress and tables, None for silence.

    Returns:
        The :class:`EvalResult`, or the PNG folder for the benchmark split.

    Raises:
        ValueError: unknown split, bad options, or as many predictions as ground-truth maps.
        FileNotFoundError: missing ground truth (names the export command) or images.
    """
    log = log or (lambda _msg: None)
    split_file(split, data)  # unknown split: fail before any work
    if (predict_fn is None) == (ext_disp is None):
        raise ValueError("cmd_evaluate: give exactly one of predict_fn and ext_disp")
    if eigen_to_benchmark and (ext_disp is None or split != "eigen_benchmark"):
        raise ValueError(
            "eigen_to_benchmark needs ext_disp (Eigen predictions) and split eigen_benchmark"
        )
    for path, what in ((save_disps, "--save-disps"), (per_image_csv, "--per-image")):
        if path is not None:
            check_writable_file(path, what)
    if split == "benchmark":
        check_writable_folder(benchmark_out, "--benchmark-out", create=False)
    gt_depths = None
    if split != "benchmark":
        gt_kind = resolve_gt_kind(split, gt_kind)
        if gt_path is None:
            if data is None:
                raise ValueError("cmd_evaluate: give data or gt_path to locate the ground truth")
            gt_path = default_gt_path(data, split, gt_kind)
        gt_depths = load_gt(gt_path, data, split, gt_kind)
    if ext_disp is not None:
        log(f"-> Loading predictions from {ext_disp}")
        pred_disps = load_ext_disp(ext_disp)
        if eigen_to_benchmark:
            ids = np.load(SPLITS_DIR / "benchmark" / "eigen_to_benchmark_ids.npy")
            if len(pred_disps) <= ids.max():
                raise ValueError(
                    f"{ext_disp}: {len(pred_disps)} predictions; eigen_to_benchmark needs the "
                    f"{len(test_split_lines('eigen'))} of the eigen split"
                )
            pred_disps = pred_disps[ids]
        # With ground truth, its count is checked below (it may be a custom --gt file).
        n_split = len(test_split_lines(split, data)) if gt_depths is None else len(pred_disps)
        if len(pred_disps) != n_split:
            raise ValueError(
                f"{ext_disp}: {len(pred_disps)} disparity maps, but the {split} split lists "
                f"{n_split} test images; give one map per line of its test_files.txt, in order"
            )
        source = str(ext_disp)
    else:
        if data is None or height is None or width is None:
            raise ValueError("cmd_evaluate: predict_fn needs data, height and width")
        paths = test_image_paths(data, split, img_ext)
        if gt_depths is not None and len(paths) != len(gt_depths):
            raise ValueError(
                f"{len(paths)} test images in the {split} split but {len(gt_depths)} "
                f"ground-truth maps in {gt_path}: both must follow the {split} split's "
                f"test_files.txt (re-export with `{export_command(data, split, gt_kind, gt_path)}`)"
            )
        log(f"-> Computing predictions with size {width}x{height} for {len(paths)} images")
        pred_disps = predict_disparities(
            predict_fn, paths, height, width, batch_size, post_process, to_scaled_disp, device
        )
        source = "the model"
    if save_disps is not None:
        with writing(save_disps, "--save-disps"):
            np.save(save_disps, pred_disps)
        log(f"-> Saved predicted disparities to {save_disps}")
    if gt_depths is None:
        out = write_benchmark_pngs(benchmark_depths(pred_disps, metric_scale), benchmark_out)
        log(f"-> Saved benchmark predictions to {out} (no ground truth: not evaluated)")
        return out
    if len(pred_disps) != len(gt_depths):
        raise ValueError(
            f"{len(pred_disps)} predictions from {source} but {len(gt_depths)} ground-truth maps "
            f"in {gt_path}: both must follow the {split} split's test_files.txt "
            f"(re-export with `{export_command(data, split, gt_kind, gt_path)}`)"
        )
    protocol = split if split in SPLIT_PROTOCOL else "directory"
    log(f"-> Evaluating {split} ({gt_kind} ground truth, {len(gt_depths)} images)")
    lines = test_split_lines(split, data)
    names = lines if len(lines) == len(pred_disps) else None
    return report_scores(
        pred_disps, gt_depths, protocol, scaling, metric_scale, crop, per_image_csv, names,
        baseline, log,
    )  # fmt: skip


def cmd_evaluate_pose(
    predict_pose_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: str | Path,
    height: int,
    width: int,
    *,
    sequence: int | None = None,
    drive: str | None = None,
    batch_size: int = 16,
    img_ext: str = "auto",
    device: torch.device | str | None = None,
    save_poses: str | Path | None = None,
    log: Log = print,
) -> PoseResult:
    """``mono evaluate-pose``: ATE on 5-frame snippets of an odometry sequence or a raw drive.

    Args:
        predict_pose_fn: see :func:`evaluate_pose_frames` (e.g. :func:`pose_predictor`).
        data: KITTI odometry root (with ``sequence``) or KITTI raw root (with ``drive``).
        sequence: odometry sequence number (``sequences/<NN>/image_2``, ``poses/<NN>.txt``).
        drive: ``<date>/<drive folder>`` of a raw drive with ``poses.txt`` (see
            :func:`raw_drive_frames`); give exactly one of ``sequence`` and ``drive``.
        save_poses: optional ``.npy`` for the (N - 1, 4, 4) predicted ``T_{t+1, t}``.
    """
    if (sequence is None) == (drive is None):
        raise ValueError("cmd_evaluate_pose: give exactly one of sequence and drive")
    if save_poses is not None:
        check_writable_file(save_poses, "--save-poses")
    if drive is not None:
        paths, gt = raw_drive_frames(data, drive, img_ext)
        what = f"drive {drive}"
    else:
        paths, gt = odometry_frames(data, sequence, img_ext)
        what = f"sequence {sequence:02d}"
    if log is not None:
        log(f"-> Predicting {len(gt) - 1} relative poses of {what} at {width}x{height}")
    result = evaluate_pose_frames(
        predict_pose_fn, paths, gt, height, width, batch_size, device, log
    )
    if save_poses is not None:
        with writing(save_poses, "--save-poses"):
            np.save(save_poses, result.pred_poses)
        if log is not None:
            log(f"-> Predictions saved to {save_poses}")
    return result
