"""`mono evaluate-pose` reports its unit and a constant-velocity baseline beside the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mono.data.synth import make_drives
from mono.evaluation import commands, pose


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _transform(rotation: np.ndarray, translation) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, translation
    return T


def test_mean_motion_hand_computed():
    motions = np.stack(
        [_transform(_rot_z(0.2), [1.0, 0.0, 0.0]), _transform(_rot_z(-0.2), [3.0, 0.0, 2.0])]
    )
    expected = _transform(np.eye(3), [2.0, 0.0, 1.0])  # opposite turns cancel
    np.testing.assert_allclose(pose.mean_motion(motions), expected, atol=1e-12)
    same = np.stack([_transform(_rot_z(0.3), [0.5, 0.0, -1.0])] * 3)
    np.testing.assert_allclose(pose.mean_motion(same), same[0], atol=1e-12)


def _trajectory(motions: np.ndarray) -> np.ndarray:
    """Camera -> world poses G_0 = I, G_{t+1} = G_t inv(T_{t+1, t})."""
    poses = [np.eye(4)]
    for T in motions:
        poses.append(poses[-1] @ np.linalg.inv(T))
    return np.stack(poses)


def test_constant_velocity_baseline_is_perfect_on_a_constant_velocity_drive():
    step = _transform(_rot_z(0.05), [0.0, 0.0, -1.0])
    steady = _trajectory(np.stack([step] * 9))
    result = pose.constant_velocity_baseline(steady)
    assert result.ate_mean == pytest.approx(0.0, abs=1e-12)
    # Speeding up and turning left then right: a constant velocity cannot follow it.
    varied = np.stack(
        [_transform(_rot_z(0.1 * (-1) ** (t // 3)), [0.0, 0.0, -0.5 * (1 + t)]) for t in range(9)]
    )
    assert pose.constant_velocity_baseline(_trajectory(varied)).ate_mean > 1e-3


@pytest.fixture
def test_drive(synthetic_root):
    (drive,) = [d for d in make_drives(seed=0, preset="tiny") if d.split == "test"]
    paths, gt = pose.raw_drive_frames(synthetic_root, drive.relpath)
    return drive, gt


def _replaying(motions: np.ndarray):
    """A predict_pose_fn that returns ``motions`` in order, whatever the frames."""
    queue = list(torch.from_numpy(motions))

    def predict(frames_t: torch.Tensor, frames_t1: torch.Tensor) -> torch.Tensor:
        return torch.stack([queue.pop(0) for _ in range(frames_t.shape[0])])

    return predict


def _evaluate(synthetic_root, drive, predict, capsys) -> tuple[pose.PoseResult, list[str]]:
    result = commands.cmd_evaluate_pose(
        predict, synthetic_root, 64, 192, drive=drive.relpath, batch_size=8
    )
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    return result, lines


def test_report_names_the_unit_and_the_baseline(synthetic_root, test_drive, capsys):
    drive, gt = test_drive
    truth = np.linalg.inv(np.linalg.inv(gt[:-1]) @ gt[1:])  # T_{t+1, t}
    result, lines = _evaluate(synthetic_root, drive, _replaying(truth), capsys)
    baseline = pose.constant_velocity_baseline(gt)
    assert result.baseline is not None
    assert result.baseline.ate_mean == pytest.approx(baseline.ate_mean)
    assert baseline.ate_mean > 0.01  # the synthetic test drive turns and changes speed
    assert lines[-3:] == [
        "Trajectory error: 0.000 m, std: 0.000 m",
        f"Constant-velocity baseline: {baseline.ate_mean:0.3f} m, std: {baseline.ate_std:0.3f} m",
        "(ATE of 5-frame snippets after per-snippet scale alignment, as Monodepth2; the baseline "
        "predicts every frame pair as the mean true motion of the sequence)",
    ]


def test_a_constant_velocity_predictor_scores_exactly_the_baseline(
    synthetic_root, test_drive, capsys
):
    drive, gt = test_drive
    truth = np.linalg.inv(np.linalg.inv(gt[:-1]) @ gt[1:])
    constant = np.tile(pose.mean_motion(truth), (len(truth), 1, 1))
    result, lines = _evaluate(synthetic_root, drive, _replaying(constant), capsys)
    assert result.ate_mean == pytest.approx(result.baseline.ate_mean, abs=1e-6)
    model_line, baseline_line = lines[-3], lines[-2]
    assert model_line.split(":")[1] == baseline_line.split(":")[1]


def test_mono_evaluate_pose_prints_unit_and_baseline(synthetic_root, test_drive, tmp_path, capsys):
    from mono.cli import main
    from mono.module import DepthModel

    drive, gt = test_drive
    torch.manual_seed(0)
    model = DepthModel(height=64, width=192, pretrained=False)  # untrained: poses near zero
    ckpt = tmp_path / "untrained.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    main(["evaluate-pose", "--ckpt", str(ckpt), "--data", str(synthetic_root)]
         + ["--drive", drive.relpath, "--save-poses", str(tmp_path / "poses.npy")])  # fmt: skip
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    result = pose.snippet_ate(np.load(tmp_path / "poses.npy"), gt)
    baseline = pose.constant_velocity_baseline(gt)
    first = next(i for i, line in enumerate(lines) if line.startswith("Trajectory error"))
    assert lines[first : first + 3] == [
        f"Trajectory error: {result.ate_mean:0.3f} m, std: {result.ate_std:0.3f} m",
        f"Constant-velocity baseline: {baseline.ate_mean:0.3f} m, std: {baseline.ate_std:0.3f} m",
        pose.PROTOCOL_NOTE,
    ]
