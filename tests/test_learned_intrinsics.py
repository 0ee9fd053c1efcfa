"""A camera learned through the view-synthesis loss: its start, its gradients, what it converges
to on the synthetic drives, and how it travels with the checkpoint into predict and export."""

import json
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from mono.checkpoint import load_networks
from mono.cli import main
from mono.data.augment import prepare_batch
from mono.data.calib import MONODEPTH2_K
from mono.data.datamodule import KittiDataModule
from mono.export import export_networks
from mono.geometry import depth_to_disp
from mono.inspect_synth import synthetic_batch, synthetic_drives, synthetic_truth
from mono.module import DepthModel
from mono.nets import LearnedIntrinsics
from mono.objective import ObjectiveConfig, view_synthesis_loss
from mono.point_cloud import read_ply

H, W = 64, 192


def _datamodule(root, batch_size=2):
    return KittiDataModule(
        root=str(root),
        split="splits",
        height=H,
        width=W,
        frame_ids=["0", "-1", "1"],
        batch_size=batch_size,
        num_workers=0,
        intrinsics="calib",
    )


def test_camera_starts_from_the_field_of_view():
    # hfov 60 at 192 x 64: f = (W / 2) / tan(30 deg) = 96 * sqrt(3) px in both directions.
    K = LearnedIntrinsics(H, W, initial_hfov_deg=60.0)(2, H, W)
    f = 96 * math.sqrt(3)
    want = torch.tensor([[f, 0, 96.0], [0, f, 32.0], [0, 0, 1]])
    assert K.shape == (2, 3, 3)
    torch.testing.assert_close(K, want.expand(2, 3, 3), rtol=1e-6, atol=1e-4)
    # The same camera at twice the size: pixel K scales, normalised K does not.
    torch.testing.assert_close(LearnedIntrinsics(H, W)(1, 2 * H, 2 * W)[0, :2], 2 * want[:2])


def test_a_mirrored_sample_mirrors_the_principal_point():
    camera = LearnedIntrinsics(H, W)
    with torch.no_grad():
        camera.principal_point.copy_(torch.tensor([0.3, 0.6]))
    K = camera(2, H, W, flip=torch.tensor([False, True]))
    assert K[0, 0, 2].item() == pytest.approx(0.3 * W)
    assert K[1, 0, 2].item() == pytest.approx(0.7 * W)
    assert K[0, 1, 2].item() == K[1, 1, 2].item() == pytest.approx(0.6 * H)


def test_the_camera_learns_at_its_own_rate(synthetic_root):
    model = DepthModel(height=H, width=W, pretrained=False, learn_intrinsics=True, lr=2e-4)
    groups = model.configure_optimizers()["optimizer"].param_groups
    camera = {id(p) for p in model.intrinsics.parameters()}
    assert [g["lr"] for g in groups] == [2e-4, pytest.approx(2e-3)]  # intrinsics_lr_scale 10
    assert {id(p) for p in groups[1]["params"]} == camera
    assert not camera & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_option_errors_name_the_option():
    with pytest.raises(ValueError, match=r"^model.initial_hfov_deg=180 must be in \(0, 180\)"):
        DepthModel(height=H, width=W, pretrained=False, learn_intrinsics=True, initial_hfov_deg=180)
    with pytest.raises(
        ValueError,
        match=r"^model.learn_intrinsics needs training_mode 'self_supervised' or 'hybrid': "
        "supervised training does not warp$",
    ):
        DepthModel(
            height=H, width=W, pretrained=False, learn_intrinsics=True, training_mode="supervised"
        )


def test_the_loss_warps_with_the_learned_camera_and_trains_it(synthetic_root):
    torch.manual_seed(0)
    dm = _datamodule(synthetic_root)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model = DepthModel(height=H, width=W, pretrained=False, learn_intrinsics=True)
    views = model.on_after_batch_transfer(batch)
    K = model.warping_K(views)
    assert not torch.allclose(K, views.K)  # the drives' K (hfov 81 deg) is not the 60 deg start
    torch.testing.assert_close(K, model.intrinsics(2, H, W, flip=batch.flip))
    model.compute_loss(views).loss.backward()
    for name, p in model.intrinsics.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    names = {n for n, p in model.named_parameters()}
    assert {"intrinsics.log_focal", "intrinsics.principal_point"} <= names  # Adam gets them


def _truth_batch(root):
    """Targets of the moving stretches of the training drives, with true depth and motion."""
    samples = []
    for drive in synthetic_drives(root):
        if drive.split == "train":
            a, b = drive.stationary
            moving = [t for t in range(2, drive.frames - 2) if t + 1 < a or t - 1 > b]
            samples += [(drive.index, t) for t in moving[::3]]
    views = prepare_batch(synthetic_batch(root, samples), H, W)
    truth = synthetic_truth(root, samples)
    depth = truth.depth.float()
    depth = torch.where(depth > 0, depth, torch.full_like(depth, 100.0))  # sky: far
    disp = depth_to_disp(depth.clamp(0.1, 100.0), 0.1, 100.0)
    disp = F.interpolate(disp, size=(H, W), mode="bilinear", antialias=True)
    return views, disp, truth.T_src_tgt


@pytest.mark.slow
@pytest.mark.parametrize("hfov_start", [40.0, 90.0])
def test_the_loss_identifies_the_focal_length_on_the_synthetic_drives(synthetic_root, hfov_start):
    """With true depth and motion, only the camera is optimised, from a wrong field of view.

    The drives turn (yaw) but never pitch, and forward motion moves pixels independently of the
    focal length: the loss identifies fx, and fy follows it through the square pixels of the
    recorded frames (1242x375, squeezed to 192x64), which the batch's native sizes give.
    """
    views, disp, T = _truth_batch(synthetic_root)
    cfg = ObjectiveConfig(disparity_smoothness=0.0)
    camera = LearnedIntrinsics(H, W, initial_hfov_deg=hfov_start)
    true_fx = float(MONODEPTH2_K[0, 0])  # the drives' normalised calibration
    assert abs(camera.describe()["fx_norm"] / true_fx - 1) > 0.1
    optimiser = torch.optim.Adam(camera.parameters(), lr=0.03)
    for _ in range(120):
        K = camera(disp.shape[0], H, W, sizes=views.sizes)
        terms, _ = view_synthesis_loss(cfg, views.color, [disp], T, K, ["-1", "1"])
        optimiser.zero_grad()
        terms["loss"].backward()
        optimiser.step()
    learned = camera.describe()
    assert learned["fx_norm"] == pytest.approx(true_fx, rel=0.05)
    assert learned["fy_norm"] == pytest.approx(float(MONODEPTH2_K[1, 1]), rel=0.05)
    assert learned["cx_norm"] == pytest.approx(0.5, abs=0.01)
    assert learned["cy_norm"] == pytest.approx(0.5, abs=0.01)


class CameraAtStepStart(pl.Callback):
    """The learned camera each training step warps with (before its optimiser step)."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append(pl_module.intrinsics.describe())


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """Two training steps with a learned camera, saved as Lightning saves a checkpoint."""
    torch.manual_seed(0)
    model = DepthModel(
        height=H, width=W, pretrained=False, learn_intrinsics=True, initial_hfov_deg=90.0, lr=1e-2
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        log_every_n_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CameraAtStepStart()],
    )
    trainer.fit(model, _datamodule(synthetic_root))
    path = tmp_path_factory.mktemp("learned") / "model.ckpt"
    trainer.save_checkpoint(path)
    return model, trainer, path


def test_training_logs_the_camera_it_learns(trained):
    model, trainer, _ = trained
    seen = trainer.callbacks[0].seen
    assert seen[0]["fx_norm"] == pytest.approx(0.5 / math.tan(math.radians(45)))
    assert seen[1]["fx_norm"] != pytest.approx(seen[0]["fx_norm"], rel=1e-4)  # Adam moved it
    # The last step logged the camera it warped with.
    for name, value in seen[1].items():
        assert trainer.callback_metrics[f"train/{name}"].item() == pytest.approx(value, rel=1e-6)


def test_the_checkpoint_holds_the_learned_camera(trained, tmp_path, capsys):
    model, _, path = trained
    want = model.intrinsics.normalised().detach().numpy()
    nets = load_networks(path)
    assert np.array_equal(nets.learned_K, want)
    reloaded = DepthModel.load_from_checkpoint(path, map_location="cpu")
    assert torch.equal(reloaded.intrinsics.normalised(), model.intrinsics.normalised())

    export_networks(nets, tmp_path / "export", "pt", part="depth")
    info = json.loads((tmp_path / "export" / "depth.pt.json").read_text())["learned_intrinsics"]
    assert [info[k] for k in ("fx", "fy", "cx", "cy")] == [
        float(want[0, 0]), float(want[1, 1]), float(want[0, 2]), float(want[1, 2])
    ]  # fmt: skip

    Image.new("RGB", (48, 16), "gray").save(tmp_path / "f.png")
    args = ["predict", tmp_path / "f.png", "--ckpt", path, "--out", tmp_path / "o"]
    main([str(a) for a in [*args, "--point-cloud", "--scale", "1"]])
    out = capsys.readouterr().out
    fx, fy, cx, cy = want[0, 0], want[1, 1], want[0, 2], want[1, 2]
    assert (
        f"point clouds: intrinsics fx={fx:g} fy={fy:g} cx={cx:g} cy={cy:g} (normalised), "
        f"the learned intrinsics of {path}" in out
    )
    vertices, _ = read_ply(tmp_path / "o" / "f.ply")
    depth = np.load(tmp_path / "o" / "f_depth.npy")
    # The centre-right pixel (row 8, column 47) lies at x = (47 - cx * 48) * z / (fx * 48).
    z = depth[8, 47]
    x = vertices["x"].reshape(16, 48)[8, 47]
    assert x == pytest.approx((47 - cx * 48) * z / (fx * 48), rel=1e-4)


def test_the_recorded_aspect_follows_batches_under_inference_mode_too():
    """Validation runs under inference mode: the camera still records the batch's aspect, and
    training afterwards can still update the buffer and differentiate through the camera."""
    camera = LearnedIntrinsics(64, 192)
    with torch.inference_mode():
        K = camera(2, 64, 192, sizes=torch.tensor([[64, 192], [64, 160]]))
    assert K.shape == (2, 3, 3) and float(camera.aspect) == pytest.approx((3 + 2.5) / 2)
    K = camera(2, 64, 192, sizes=torch.tensor([[64, 192], [64, 192]]))
    assert float(camera.aspect) == pytest.approx(3.0)
    K.sum().backward()
    assert all(p.grad is not None for p in camera.parameters())
