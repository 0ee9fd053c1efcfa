"""Supervised and hybrid training modes of DepthModel, the Eigen net in training, their configs."""

import importlib.util
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from mono.cli import main as mono_main
from mono.data.datamodule import KittiDataModule
from mono.geometry import depth_to_disp
from mono.loss_terms import TermInputs, evaluate_terms
from mono.losses import SUPERVISED_LOSSES
from mono.module import DepthModel
from mono.types import Views

ROOT = Path(__file__).resolve().parents[1]
H, W = 64, 192


def _datamodule(root, frame_ids, batch_size=2):
    return KittiDataModule(
        root=str(root),
        split="splits",
        height=H,
        width=W,
        frame_ids=frame_ids,
        batch_size=batch_size,
        num_workers=0,
        intrinsics="calib",
        depth="auto",  # LiDAR for train (right images have no dense maps), dense for test
    )


def _first_batch(root, model):
    dm = _datamodule(root, model.frame_ids)
    dm.setup("fit")
    return model.on_after_batch_transfer(next(iter(dm.train_dataloader())))


def _views(depth_gt, sizes=None, height=H, width=W):
    """Hand-made views: only ``depth_gt``/``sizes`` matter to the supervised terms."""
    b = depth_gt.shape[0]
    color = torch.rand(b, 1, 3, height, width)
    K = torch.eye(3).expand(b, 3, 3).clone()
    if sizes is None:
        sizes = torch.tensor([list(depth_gt.shape[-2:])] * b)
    return Views(color, color, K, torch.eye(4).expand(b, 4, 4), sizes, depth_gt)


# ------------------------------------------------------------------------------ supervised
def test_supervised_mode_has_no_pose_net_and_trains_the_depth_net(synthetic_root):
    torch.manual_seed(0)
    model = DepthModel(H, W, frame_ids=["0"], pretrained=False, training_mode="supervised")
    assert model.pose is None and model.mask_decoder is None
    views = _first_batch(synthetic_root, model)
    assert views.depth_gt is not None
    assert 0 < (views.depth_gt > 0).float().mean() < 0.5  # sparse projected LiDAR
    terms = model.compute_loss(views)
    assert set(terms.values) == {"sup_silog"} and terms.detail is None  # no view synthesis
    assert torch.isfinite(terms.loss) and terms.loss > 0
    assert torch.equal(terms.loss, terms.values["sup_silog"])  # weight 1, the only term
    terms.loss.backward()
    first_conv = model.depth.encoder.encoder.conv1.weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    reached = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()]
    assert any(n.startswith("depth.decoder") for n in reached)


def test_supervised_mode_without_ground_truth_says_which_option(synthetic_root):
    model = DepthModel(H, W, frame_ids=["0"], pretrained=False, training_mode="supervised")
    views = _views(torch.ones(1, 1, H, W))
    views.depth_gt = None
    with pytest.raises(ValueError, match="data.depth"):
        model.compute_loss(views)


def test_hybrid_sums_both_objectives_with_the_supervised_weight(synthetic_root):
    torch.manual_seed(0)
    hybrid = DepthModel(
        H, W, pretrained=False, training_mode="hybrid", supervised_weight=0.5,
        supervised_losses={"silog": 1.0, "l1": 0.1},
    )  # fmt: skip
    ss = DepthModel(H, W, pretrained=False)
    ss.load_state_dict(hybrid.state_dict())  # same depth and pose networks
    views = _first_batch(synthetic_root, hybrid)
    torch.manual_seed(1)  # the automask's tie-break noise draws from the global generator
    hybrid_terms = hybrid.compute_loss(views)
    torch.manual_seed(1)
    ss_terms = ss.compute_loss(views)
    h, s = hybrid_terms.values, ss_terms.values
    assert set(h) == {"reprojection", "smoothness", "sup_silog", "sup_l1"}
    assert torch.equal(h["reprojection"], s["reprojection"])
    supervised = h["sup_silog"] + 0.1 * h["sup_l1"]
    torch.testing.assert_close(hybrid_terms.loss, ss_terms.loss + 0.5 * supervised)


def test_hybrid_training_step_logs_both_terms(synthetic_root):
    pl.seed_everything(0, verbose=False)
    model = DepthModel(H, W, pretrained=False, training_mode="hybrid")
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=_datamodule(synthetic_root, model.frame_ids))
    logged = trainer.callback_metrics
    for name in ("train/loss", "train/reprojection", "train/smoothness", "train/sup_silog"):
        assert name in logged and torch.isfinite(logged[name]), name
    assert logged["train/sup_silog"] > 0 and logged["train/reprojection"] > 0


def _supervised(model, disp, views):
    """Every configured (supervised) term on ``disp`` and their weighted sum."""
    inputs = TermInputs(views, [disp], model.depth, gt_depth_range=model.hparams.gt_depth_range)
    terms = evaluate_terms(model.terms, inputs)
    return {**terms.values, "supervised": terms.loss}


def test_supervised_terms_ignore_invalid_ground_truth_in_the_module():
    torch.manual_seed(0)
    model = DepthModel(
        H, W, frame_ids=["0"], pretrained=False, training_mode="supervised",
        supervised_losses={name: 1.0 for name in SUPERVISED_LOSSES},
    )  # fmt: skip
    gt = torch.empty(2, 1, H, W).uniform_(2.0, 50.0)
    invalid = torch.zeros_like(gt, dtype=torch.bool)
    invalid[0, :, 10:30, 20:80] = True  # a hole (GT 0)
    invalid[1, :, :, : W // 2] = True  # half an image without measurements
    gt[invalid] = 0.0
    gt[0, 0, 50, 100] = 150.0  # beyond model.gt_depth_range (100 m): invalid too
    invalid[0, 0, 50, 100] = True
    disp = torch.rand(2, 1, H, W, requires_grad=True)  # at the ground truth's size
    out = _supervised(model, disp, _views(gt))
    assert set(out) == {f"sup_{n}" for n in SUPERVISED_LOSSES} | {"supervised"}
    out["supervised"].backward()
    assert torch.all(disp.grad[invalid] == 0)
    assert (disp.grad[~invalid] != 0).float().mean() > 0.9
    # Any prediction at invalid pixels gives the same value.
    other = torch.where(invalid, torch.rand_like(disp), disp.detach())
    again = _supervised(model, other, _views(gt))
    for name, value in out.items():
        assert torch.equal(again[name], value.detach()), name


def test_ground_truth_padding_is_cropped_per_sample():
    """A perfect prediction scores 0 when the samples of a batch have different native sizes."""
    model = DepthModel(
        H, W, frame_ids=["0"], pretrained=False, training_mode="supervised",
        supervised_losses={"l1": 1.0},
    )  # fmt: skip
    ramp = torch.linspace(2.0, 40.0, W).expand(H, W)  # sample 0: native size == network size
    gt = torch.zeros(2, 1, H + 16, W + 64)  # padded to sample 1's native size
    gt[0, 0, :H, :W] = ramp
    gt[1] = 10.0  # sample 1: a constant, any resize of a constant prediction matches it
    sizes = torch.tensor([[H, W], [H + 16, W + 64]])
    depth = torch.stack([ramp, torch.full((H, W), 10.0)])[:, None]
    disp = depth_to_disp(depth, model.hparams.min_depth, model.hparams.max_depth)
    out = _supervised(model, disp, _views(gt, sizes))
    assert out["sup_l1"] < 1e-3


# ------------------------------------------------------------------------------ eigen
def test_eigen_net_trains_in_supervised_mode(synthetic_root):
    torch.manual_seed(0)
    model = DepthModel(
        H, W, frame_ids=["0"], depth_net="eigen", pretrained=False, training_mode="supervised",
        lr=1e-3,
    )  # fmt: skip
    assert model.pose is None and type(model.depth).__name__ == "EigenCoarseFine"
    views = _first_batch(synthetic_root, model)
    optimizer = model.configure_optimizers()["optimizer"]

    def loss(train: bool):
        model.train(train)
        return model.compute_loss(views).loss

    with torch.no_grad():
        before = loss(False)
    for step in range(5):
        optimizer.zero_grad()
        value = loss(True)
        assert torch.isfinite(value)
        value.backward()
        if step == 0:
            for name, p in model.depth.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        optimizer.step()
    with torch.no_grad():
        assert loss(False) < before


def test_eigen_model_accepts_sizes_the_resnet_cannot():
    model = DepthModel(
        70, 200, frame_ids=["0"], depth_net="eigen", pretrained=False, training_mode="supervised"
    )
    views = _views(torch.full((2, 1, 70, 200), 10.0), height=70, width=200)
    views.color = views.color_aug = torch.rand(2, 1, 3, 70, 200)
    terms = model.compute_loss(views)
    assert terms.disps[0].shape == (2, 1, 70, 200) and torch.isfinite(terms.loss)


# ------------------------------------------------------------------------------ options
def test_training_mode_typo_names_the_option():
    with pytest.raises(ValueError, match=r"model\.training_mode='supervise'.*hybrid"):
        DepthModel(H, W, pretrained=False, training_mode="supervise")


def test_unknown_supervised_loss_names_the_option_and_the_choices():
    with pytest.raises(ValueError, match=r"model\.supervised_losses: unknown \['silogg'\].*l1"):
        DepthModel(H, W, pretrained=False, training_mode="supervised",
                   supervised_losses={"silogg": 1.0})  # fmt: skip


def test_self_supervision_needs_a_source_frame():
    with pytest.raises(ValueError, match=r"model\.frame_ids"):
        DepthModel(H, W, frame_ids=["0"], pretrained=False, training_mode="hybrid")


def _print_config(capsys, *configs, extra=()):
    """``mono fit --config ... --print_config``: (exit code, parsed stdout or None, stderr)."""
    args = ["fit"] + [a for c in configs for a in ("--config", str(ROOT / "configs" / c))]
    with pytest.raises(SystemExit) as exit_info:
        mono_main([*args, *extra, "--print_config"])
    captured = capsys.readouterr()
    code = exit_info.value.code or 0
    return code, yaml.safe_load(captured.out) if code == 0 else None, captured.err


@pytest.mark.parametrize(
    ("delta", "mode", "frame_ids"),
    [
        ("synthetic_supervised.yaml", "supervised", ["0"]),
        ("synthetic_hybrid.yaml", "hybrid", ["0", "-1", "1", "s"]),
    ],
)
def test_mode_configs_are_deltas_on_the_synthetic_config(capsys, delta, mode, frame_ids):
    code, base, err = _print_config(capsys, "synthetic.yaml")
    assert code == 0, err
    code, cfg, err = _print_config(capsys, "synthetic.yaml", delta)
    assert code == 0, err
    assert cfg["model"]["training_mode"] == mode
    assert cfg["model"]["supervised_losses"] == {"silog": 1.0}
    assert cfg["data"]["frame_ids"] == frame_ids and cfg["data"]["depth"] == "auto"
    # Everything else of the trainer is synthetic.yaml's, with this mode's run folder (so the
    # checkpoints of runs/synthetic are not overwritten).
    moved = yaml.safe_load(
        yaml.safe_dump(base["trainer"]).replace("runs/synthetic", f"runs/synthetic_{mode}")
    )
    assert cfg["trainer"] == moved
    own = {
        "training_mode",
        "supervised_losses",
        "min_depth",
        "automask_warmup_steps",
        "lr_warmup_steps",
    }
    for key in set(base["model"]) - own:
        assert cfg["model"][key] == base["model"][key], key
    model = DepthModel(
        height=cfg["data"]["height"], width=cfg["data"]["width"], frame_ids=frame_ids,
        **cfg["model"],
    )  # fmt: skip
    assert (model.pose is None) == (mode == "supervised")


def test_cli_rejects_a_training_mode_typo(capsys):
    code, _, err = _print_config(
        capsys, "synthetic.yaml", extra=["--model.training_mode", "supervise"]
    )
    assert code != 0 and "training_mode" in err and "supervise" in err


# ------------------------------------------------------------------------------ comparison
def _load_script():
    path = ROOT / "scripts" / "compare_training_modes.py"
    spec = importlib.util.spec_from_file_location("compare_training_modes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_supervised_and_hybrid_beat_self_supervised_at_equal_steps(synthetic_root):
    script = _load_script()
    args = script.build_parser().parse_args(
        ["--steps", "40", "--batch-size", "2", "--preset", "tiny", "--root", str(synthetic_root)]
    )
    results, baseline = script.run_comparison(args)
    abs_rel = {r.mode: r.metrics["abs_rel"] for r in results}
    table = script.format_table(results, baseline)
    assert abs_rel["supervised"] < abs_rel["self_supervised"], table
    assert abs_rel["hybrid"] < abs_rel["self_supervised"], table
    # Ground truth also gives them metric scale: unscaled abs_rel close to the scaled one.
    for result in results:
        if result.mode != "self_supervised":
            assert result.abs_rel_unscaled < 2 * result.metrics["abs_rel"], table
