"""`mono fit` on a KITTI-odometry-layout tree, then `mono evaluate-pose --sequence 9` on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kitti_odom_tree import write_kitti_odom_tree

from mono.cli import main
from mono.evaluation import pose

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_fit_on_odometry_then_evaluate_pose(synthetic_root, tmp_path, capsys):
    root = write_kitti_odom_tree(synthetic_root, tmp_path / "odom")
    run = tmp_path / "run"
    main(
        [
            "fit",
            "--config", str(REPO / "configs" / "synthetic.yaml"),
            "--config", str(REPO / "configs" / "kitti_odom.yaml"),
            f"--data.root={root}",
            "--data.synthesize=null",
            "--data.split=splits/odom_tiny",
            "--data.batch_size=2",
            "--data.num_workers=0",
            f"--trainer.default_root_dir={run}",
            "--trainer.logger=false",
            "--trainer.max_steps=3",
        ]
    )  # fmt: skip
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    capsys.readouterr()
    poses_file = tmp_path / "poses.npy"
    main(["evaluate-pose", "--ckpt", str(ckpt), "--data", str(root), "--sequence", "9",
          "--save-poses", str(poses_file)])  # fmt: skip
    out = capsys.readouterr().out
    gt = pose.read_odometry_poses(root / "poses" / "09.txt")
    predicted = np.load(poses_file)
    assert predicted.shape == (len(gt) - 1, 4, 4)
    assert f"-> Predicting {len(gt) - 1} relative poses of sequence 09 at 192x64" in out
    result = pose.snippet_ate(predicted, gt)
    assert f"Trajectory error: {result.ate_mean:0.3f} m, std: {result.ate_std:0.3f} m" in out
