"""DepthModel wiring on real synthetic batches: modes, pose variants, switches, option errors."""

import pytest
import torch

from mono.data.datamodule import KittiDataModule
from mono.module import DepthModel

H, W = 64, 192


def _views(root, frame_ids=("0", "-1", "1"), batch_size=2):
    dm = KittiDataModule(
        root=str(root),
        split="splits",
        height=H,
        width=W,
        frame_ids=list(frame_ids),
        batch_size=batch_size,
        num_workers=0,
        intrinsics="calib",
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    return batch


def _step(model, batch):
    views = model.on_after_batch_transfer(batch)
    terms = model.compute_loss(views)
    terms.loss.backward()
    return terms, terms.disps


@pytest.mark.parametrize(
    "frame_ids, has_pose",
    [(("0", "-1", "1"), True), (("0", "s"), False), (("0", "-1", "1", "s"), True)],
    ids=["mono", "stereo", "mono+stereo"],
)
def test_every_parameter_learns_in_each_mode(synthetic_root, frame_ids, has_pose):
    torch.manual_seed(0)
    model = DepthModel(height=H, width=W, frame_ids=list(frame_ids), pretrained=False)
    assert (model.pose is not None) == has_pose
    terms, disps = _step(model, _views(synthetic_root, frame_ids))
    assert torch.isfinite(terms.loss) and terms.loss > 0
    assert len(disps) == 4
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("pose_model_type", ["shared", "posecnn"])
def test_pose_variants_train(synthetic_root, pose_model_type):
    torch.manual_seed(0)
    model = DepthModel(height=H, width=W, pose_model_type=pose_model_type, pretrained=False)
    _step(model, _views(synthetic_root))
    assert all(p.grad is not None for p in model.pose.parameters())


@pytest.mark.parametrize(
    "switch", ["v1_multiscale", "predictive_mask", "avg_reprojection", "no_ssim"]
)
def test_loss_switches_run(synthetic_root, switch):
    torch.manual_seed(0)
    model = DepthModel(height=H, width=W, pretrained=False, **{switch: True})
    terms, _ = _step(model, _views(synthetic_root))
    assert torch.isfinite(terms.loss)
    if switch == "predictive_mask":
        assert all(p.grad is not None for p in model.mask_decoder.parameters())


def test_stereo_pose_is_the_batch_baseline(synthetic_root):
    model = DepthModel(height=H, width=W, frame_ids=["0", "s"], pretrained=False)
    batch = _views(synthetic_root, ("0", "s"))
    views = model.on_after_batch_transfer(batch)
    T = model.predict_poses(views)
    assert T.shape == (2, 1, 4, 4)
    assert torch.equal(T[:, 0], views.T_stereo)
    assert torch.allclose(T[:, 0, 0, 3].abs(), torch.full((2,), 0.1))


def test_past_frames_use_inverted_pose(synthetic_root):
    """The pose of frame -1 is predicted on the pair (-1, 0) and inverted (Monodepth2)."""
    torch.manual_seed(0)
    model = DepthModel(height=H, width=W, pretrained=False).eval()
    views = model.on_after_batch_transfer(_views(synthetic_root))
    with torch.no_grad():
        T = model.predict_poses(views)
        aa, t = model.pose(views.color_aug[:, 1], views.color_aug[:, 0])
    from mono.geometry import pose_vec_to_mat

    expected = torch.linalg.inv(pose_vec_to_mat(aa, t))
    assert torch.allclose(T[:, 0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"height": 100}, "height=100"),
        ({"frame_ids": ["-1", "0"]}, "model.frame_ids"),
        ({"training_mode": "semi"}, "model.training_mode"),
        ({"supervised_losses": {"huber": 1.0}}, "model.supervised_losses"),
        ({"pose_model_type": "flow"}, "pose_model_type"),
        ({"automask_ramp_steps": -1}, "model.automask_ramp_steps=-1 must be >= 0"),
        ({"pose_lr_scale": 0}, "model.pose_lr_scale=0 must be > 0"),
    ],
)
def test_bad_options_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        DepthModel(pretrained=False, **kwargs)


def test_automask_warmup_trains_with_every_pixel_then_monodepth2s_loss(synthetic_root, monkeypatch):
    """Before ``automask_warmup_steps`` the training loss is the loss without auto-masking,
    from then on Monodepth2's (auto-masked) loss; inspection always shows the configured one."""
    torch.manual_seed(0)
    model = DepthModel(height=H, width=W, pretrained=False, automask_warmup_steps=3).eval()
    views = model.on_after_batch_transfer(_views(synthetic_root))

    def loss(**kwargs):
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(1)  # the same tie-break noise for every call
            return model.compute_loss(views, **kwargs).loss

    unmasked = loss(automask=False)
    masked = loss()
    assert not torch.isclose(unmasked, masked)  # the auto-mask removes some pixels here
    plain = DepthModel(height=H, width=W, pretrained=False, disable_automasking=True)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        assert torch.equal(plain.compute_loss(views).loss, unmasked)

    steps = []
    model.log_dict = model.log = lambda *a, **k: None  # no trainer to log to
    for global_step in (0, 2, 3, 10):
        monkeypatch.setattr(DepthModel, "global_step", property(lambda self, s=global_step: s))
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(1)
            steps.append(model.training_step(views, 0))
    assert [torch.equal(s, unmasked) for s in steps] == [True, True, False, False]
    assert [torch.equal(s, masked) for s in steps] == [False, False, True, True]


def test_automask_warmup_must_not_be_negative():
    with pytest.raises(ValueError, match=r"model.automask_warmup_steps=-1 must be >= 0"):
        DepthModel(height=H, width=W, pretrained=False, automask_warmup_steps=-1)


def test_channels_last_gives_the_same_loss_and_gradients(synthetic_root):
    batch = _views(synthetic_root)
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = DepthModel(height=H, width=W, pretrained=False, channels_last=channels_last)
        conv = model.depth.encoder.encoder.conv1.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        torch.manual_seed(1)  # the same tie-break noise
        terms, _ = _step(model, batch)
        results.append((terms.loss.detach(), conv.grad.clone()))
    (loss_a, grad_a), (loss_b, grad_b) = results
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-3, atol=1e-6)


def test_compile_compiles_each_network_in_place_once(monkeypatch):
    # Compiling costs minutes: record the calls instead (nn.Module.compile keeps the names).
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(self))
    model = DepthModel(height=H, width=W, pretrained=False, compile=True)
    names = sorted(model.state_dict())
    model.setup("fit")
    model.setup("validate")
    assert compiled == [model.depth, model.pose]
    assert sorted(model.state_dict()) == names


def test_automask_ramp_blends_the_unmasked_loss_into_monodepth2s(synthetic_root, monkeypatch):
    """After the warm-up the masked loss's weight rises linearly to 1 over the ramp: the
    training loss is exactly w * masked + (1 - w) * unmasked."""
    torch.manual_seed(0)
    model = DepthModel(
        height=H, width=W, pretrained=False, automask_warmup_steps=2, automask_ramp_steps=3
    ).eval()
    assert [model.automask_weight(s) for s in range(7)] == [0, 0, 0.25, 0.5, 0.75, 1, 1]
    views = model.on_after_batch_transfer(_views(synthetic_root))
    model.log_dict = model.log = lambda *a, **k: None

    def loss(step=None, **kwargs):
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(1)
            if step is None:
                return model.compute_loss(views, **kwargs).loss
            monkeypatch.setattr(DepthModel, "global_step", property(lambda self: step))
            return model.training_step(views, 0)

    masked, unmasked = loss(), loss(automask=False)
    smooth = 1e-3 * model.compute_loss(views).values["smoothness"]
    for step, w in ((1, 0.0), (3, 0.5), (4, 0.75), (5, 1.0)):
        want = w * (masked - smooth) + (1 - w) * (unmasked - smooth) + smooth
        torch.testing.assert_close(loss(step), want, rtol=1e-6, atol=0)


def test_pose_learning_rate_is_its_own_group_only_when_scaled():
    plain = DepthModel(height=H, width=W, pretrained=False)
    assert len(plain.configure_optimizers()["optimizer"].param_groups) == 1
    model = DepthModel(height=H, width=W, pretrained=False, lr=1e-3, pose_lr_scale=0.2)
    groups = model.configure_optimizers()["optimizer"].param_groups
    pose_ids = {id(p) for p in model.pose.parameters()}
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(2e-4)]
    assert {id(p) for p in groups[1]["params"]} == pose_ids
    assert not pose_ids & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_pose_learning_rate_changes_once_when_the_mask_turns_on(synthetic_root, tmp_path):
    """masked_pose_lr_scale multiplies the pose rate at the warm-up's end, exactly once: a run
    resumed after that step keeps the lowered rate and does not lower it again."""
    import pytorch_lightning as pl

    def run(max_steps, ckpt=None):
        rates = []

        class Record(pl.Callback):
            def on_train_batch_end(self, trainer, module, *args):
                groups = trainer.optimizers[0].param_groups
                rates.append({g.get("name", "all"): g["lr"] for g in groups})

        pl.seed_everything(0, verbose=False)
        model = DepthModel(
            height=H, width=W, pretrained=False, lr=1e-3, automask_warmup_steps=2,
            masked_pose_lr_scale=0.1,
        )  # fmt: skip
        dm = KittiDataModule(
            root=str(synthetic_root), split="splits", height=H, width=W, batch_size=2,
            num_workers=0, intrinsics="calib",
        )  # fmt: skip
        trainer = pl.Trainer(
            accelerator="cpu", max_steps=max_steps, limit_val_batches=0, logger=False,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
            callbacks=[Record()], enable_checkpointing=False,
        )  # fmt: skip
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
        return trainer, rates

    trainer, rates = run(3)
    assert [r["pose"] for r in rates] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert [r["all"] for r in rates] == [1e-3] * 3
    trainer.save_checkpoint(tmp_path / "step3.ckpt")
    _, resumed = run(4, tmp_path / "step3.ckpt")
    assert [r["pose"] for r in resumed] == pytest.approx([1e-4])


def test_learning_rate_warmup_scales_the_first_steps_only(synthetic_root, tmp_path):
    import pytorch_lightning as pl

    seen, after = [], []

    class Record(pl.Callback):
        def on_before_optimizer_step(self, trainer, module, optimizer):
            seen.append([g["lr"] for g in optimizer.param_groups])

        def on_train_batch_end(self, trainer, module, *args):
            after.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    pl.seed_everything(0, verbose=False)
    model = DepthModel(
        height=H, width=W, pretrained=False, lr=1e-3, lr_warmup_steps=4, pose_lr_scale=0.5
    )
    dm = KittiDataModule(
        root=str(synthetic_root), split="splits", height=H, width=W, batch_size=2,
        num_workers=0, intrinsics="calib",
    )  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=5, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[Record()], enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    factors = [0.25, 0.5, 0.75, 1.0, 1.0]
    assert seen == [pytest.approx([1e-3 * f, 5e-4 * f]) for f in factors]
    assert after == [[1e-3, 5e-4]] * 5  # the configured rates stay in the optimiser's state
