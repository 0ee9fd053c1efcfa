"""The metric scale of a model's depth: decided once from how it was trained, used by every tool.

A model trained with a metric stereo baseline ("calib", or the real baseline in metres) predicts
metres; one trained with Monodepth2's 0.1 m convention predicts metres / 5.4; a monocular model
has no scale. The tests build networks that predict one known constant depth, so every written
or scored value is computed by hand.
"""

import json
import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from mono.checkpoint import load_networks
from mono.cli import main
from mono.data.calib import metric_scale
from mono.evaluation import gt
from mono.module import DepthModel

H, W = 64, 192
MONO_STEREO = ["0", "-1", "1", "s"]


def _constant_depth_model(net_depth: float, **kwargs) -> DepthModel:
    """A DepthModel whose full-resolution depth is ``net_depth`` everywhere."""
    torch.manual_seed(0)
    model = DepthModel(H, W, pretrained=False, **kwargs).eval()
    head = model.depth.decoder.dispconv(0).conv
    lo, hi = 1 / model.hparams.max_depth, 1 / model.hparams.min_depth
    sigmoid = (1 / net_depth - lo) / (hi - lo)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(math.log(sigmoid / (1 - sigmoid)))
    return model


def _save(model: DepthModel, path, drop=()):
    """A checkpoint written by Lightning; ``drop`` removes hyper-parameters (older files)."""
    import pytorch_lightning as pl

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path, weights_only=True)
    ckpt = torch.load(path, weights_only=False)
    for key in drop:
        del ckpt["hyper_parameters"][key]
    torch.save(ckpt, path)
    return path


def _run(capsys, *args) -> str:
    main([str(a) for a in args])
    return capsys.readouterr().out


# The model predicts D_NET; metres are D_NET times the scale of the way it was trained.
CASES = [
    # (stereo_baseline, depth the network predicts, metres per unit of it)
    ("calib", 12.0, 1.0),
    (0.54, 12.0, 1.0),  # a number other than 0.1 is the real baseline in metres
    (0.1, 12.0 / 5.4, 5.4),  # Monodepth2's convention: metres = 5.4 x depth
]


@pytest.mark.parametrize(
    "frame_ids, baseline, mode, expected",
    [
        (MONO_STEREO, "calib", "self_supervised", 1.0),
        (["0", "s"], "calib", "self_supervised", 1.0),
        (MONO_STEREO, 0.1, "self_supervised", 5.4),
        (MONO_STEREO, 0.54, "self_supervised", 1.0),
        (["0", "-1", "1"], "calib", "self_supervised", None),  # no stereo frame: no scale
        (["0", "-1", "1"], 0.1, "self_supervised", None),
        (["0"], 0.1, "supervised", 1.0),  # ground truth is in metres
        (["0", "-1", "1"], 0.1, "hybrid", 1.0),
    ],
)
def test_metric_scale_rule(frame_ids, baseline, mode, expected):
    assert metric_scale(frame_ids, baseline, mode) == expected


def test_the_model_knows_and_stores_its_scale(tmp_path):
    model = DepthModel(H, W, pretrained=False, frame_ids=MONO_STEREO, stereo_baseline="calib")
    assert model.metric_scale == 1.0 and model.hparams.stereo_baseline == "calib"
    assert DepthModel(H, W, pretrained=False, frame_ids=MONO_STEREO).metric_scale == 5.4
    assert DepthModel(H, W, pretrained=False).metric_scale is None
    nets = load_networks(_save(model, tmp_path / "m.ckpt"))
    assert nets.metric_scale == 1.0


def test_stereo_scaling_needs_a_model_with_a_scale():
    with pytest.raises(ValueError) as info:
        DepthModel(H, W, pretrained=False, eval_scaling="stereo")
    assert str(info.value) == (
        "model.eval_scaling='stereo' needs a metric model, but frame_ids ['0', '-1', '1'] "
        "have no stereo frame 's': use 'median'"
    )
    with pytest.raises(ValueError) as info:
        DepthModel(H, W, pretrained=False, frame_ids=MONO_STEREO, stereo_baseline="wide")
    assert str(info.value) == (
        "model.stereo_baseline='wide': a positive number (m) or 'calib' "
        "(linked to data.stereo_baseline)"
    )


def test_an_older_checkpoint_keeps_the_old_rule_with_a_warning(tmp_path):
    model = DepthModel(H, W, pretrained=False, frame_ids=MONO_STEREO, stereo_baseline="calib")
    ckpt = _save(model, tmp_path / "old.ckpt", drop=("stereo_baseline",))
    with pytest.warns(UserWarning) as record:
        nets = load_networks(ckpt)
    assert nets.metric_scale == 5.4
    assert str(record[0].message) == (
        f"{ckpt} does not record the stereo baseline it was trained with (older than "
        "model.stereo_baseline): assuming Monodepth2's 0.1 m convention, metres = 5.4 x depth; "
        "if it was trained with data.stereo_baseline 'calib' its depth is already in metres"
    )
    mono = DepthModel(H, W, pretrained=False)
    mono = _save(mono, tmp_path / "mono.ckpt", drop=("stereo_baseline",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to assume for a monocular model
        assert load_networks(mono).metric_scale is None


@pytest.mark.parametrize("baseline, net_depth, scale", CASES)
def test_predict_writes_metres(tmp_path, capsys, baseline, net_depth, scale):
    model = _constant_depth_model(net_depth, frame_ids=MONO_STEREO, stereo_baseline=baseline)
    ckpt = _save(model, tmp_path / "m.ckpt")
    (tmp_path / "in").mkdir()
    from PIL import Image

    Image.new("RGB", (50, 30), (90, 120, 60)).save(tmp_path / "in" / "a.png")
    out = _run(capsys, "predict", tmp_path / "in", "--ckpt", ckpt, "--out", tmp_path / "o")
    assert "disparity + metric depth" in out
    depth = np.load(tmp_path / "o" / "a_depth.npy")
    assert depth.shape == (30, 50)
    np.testing.assert_allclose(depth, 12.0, rtol=1e-4)  # metres, whatever the baseline


@pytest.mark.parametrize("baseline, net_depth, scale", CASES)
def test_export_describes_metres(tmp_path, baseline, net_depth, scale):
    model = _constant_depth_model(net_depth, frame_ids=MONO_STEREO, stereo_baseline=baseline)
    ckpt = _save(model, tmp_path / "m.ckpt")
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "x"), "--format", "pt"])
    info = json.loads((tmp_path / "x" / "depth.pt.json").read_text())
    assert info["metric_scale"] == scale
    to_depth = info["outputs"][0]["to_depth"]
    if scale == 1.0:
        assert to_depth.endswith("; depth is in metres") and "5.4" not in to_depth
    else:
        assert to_depth.endswith("; metres = 5.4 * depth")


def _constant_depth_scores(gt_depths, depth):
    """abs_rel and rmse of a constant depth on the "directory" protocol (no crop, 1e-3..80 m)."""
    abs_rel, rmse = [], []
    for g in gt_depths:
        g = g[(g > 1e-3) & (g < 80)].astype(np.float64)
        pred = np.clip(depth, 1e-3, 80)
        abs_rel.append(np.mean(np.abs(g - pred) / g))
        rmse.append(np.sqrt(np.mean((g - pred) ** 2)))
    return np.mean(abs_rel), np.mean(rmse)


@pytest.mark.parametrize("baseline, net_depth, scale", CASES)
def test_evaluate_auto_scales_by_the_models_own_scale(
    synthetic_root, tmp_path, capsys, baseline, net_depth, scale
):
    split = tmp_path / "split"
    split.mkdir()
    shutil.copy(synthetic_root / "splits" / "test_files.txt", split)
    _run(capsys, "export-gt", "--data", synthetic_root, "--split", split)
    gt_depths = gt.load_gt(split / "gt_depths_camera.npz")
    metres = float(np.median(np.concatenate([g[g > 0] for g in gt_depths])))
    model = _constant_depth_model(metres / scale, frame_ids=MONO_STEREO, stereo_baseline=baseline)
    ckpt = _save(model, tmp_path / "m.ckpt")
    out = _run(capsys, "evaluate", "--ckpt", ckpt, "--data", synthetic_root, "--split", split)
    assert f"-> Scaling: stereo (auto: the model's depth is metric, x{scale:g})" in out
    assert f"Stereo evaluation - no median scaling, depth scaled by {scale:g}" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("abs_rel |"))
    values = [float(v) for v in lines[header + 1].replace("\\\\", "").split("&") if v.strip()]
    abs_rel, rmse = _constant_depth_scores(gt_depths, metres)
    assert values[0] == pytest.approx(abs_rel, abs=6e-4)
    assert values[2] == pytest.approx(rmse, abs=6e-4)


@pytest.mark.parametrize("baseline, net_depth, scale", CASES)
def test_validation_stereo_scaling_uses_the_models_scale(
    synthetic_root, baseline, net_depth, scale
):
    import pytorch_lightning as pl

    from mono.data.datamodule import KittiDataModule

    def val_abs_rel(model):
        data = KittiDataModule(
            root=str(synthetic_root), split="splits", height=H, width=W, frame_ids=["0"],
            intrinsics="calib", depth="auto", batch_size=4, num_workers=0,
        )  # fmt: skip
        trainer = pl.Trainer(
            accelerator="cpu", logger=False, limit_val_batches=1, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False,
        )  # fmt: skip
        trainer.validate(model, data, verbose=False)
        return float(trainer.callback_metrics["val/abs_rel"])

    common = dict(frame_ids=MONO_STEREO, eval_crop="none")
    metric = _constant_depth_model(12.0, **common, stereo_baseline="calib", eval_scaling="none")
    scored = _constant_depth_model(
        net_depth, **common, stereo_baseline=baseline, eval_scaling="stereo"
    )
    assert val_abs_rel(scored) == pytest.approx(val_abs_rel(metric), rel=1e-5)


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "older-checkpoint"])
def test_mono_test_takes_the_baseline_from_the_data_config(
    synthetic_root, tmp_path, capsys, stored
):
    # configs/synthetic_mono_stereo.yaml trains with data.stereo_baseline calib: x1, not x5.4. A
    # checkpoint that does not store the baseline gets it from the config through the link.
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    drop = () if stored else ("stereo_baseline",)
    abs_rel = {}
    for scaling in ("stereo", "none"):
        model = _constant_depth_model(
            12.0, frame_ids=MONO_STEREO, stereo_baseline="calib", eval_scaling=scaling,
            eval_crop="none", min_depth=1.0,
        )  # fmt: skip
        ckpt = _save(model, tmp_path / f"{scaling}.ckpt", drop=drop)
        capsys.readouterr()
        main(
            [
                "test", "--config", str(configs / "synthetic.yaml"),
                "--config", str(configs / "synthetic_mono_stereo.yaml"),
                f"--data.root={synthetic_root}",
                "--data.synthesize=null", "--data.num_workers=0", "--data.batch_size=4",
                f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
                "--trainer.callbacks=[]", "--trainer.limit_test_batches=1",
                f"--ckpt_path={ckpt}",
            ]
        )  # fmt: skip
        line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("model "))
        abs_rel[scaling] = float(line.split()[1])
    assert abs_rel["stereo"] == abs_rel["none"] < 1.0
