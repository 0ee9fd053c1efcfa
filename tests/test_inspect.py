"""The inspection entry point on the synthetic drives: what the loss saw, and the auto-mask."""

import dataclasses

import pytest
import torch

from mono.checkpoint import CheckpointError
from mono.data.augment import prepare_batch
from mono.data.synth import MOVING_CAR, SKY
from mono.inspect import Inspection, inspect_batch, load_model, show_panels
from mono.inspect_synth import synthetic_batch, synthetic_drives, synthetic_truth, truth_model
from mono.module import DepthModel

H, W = 64, 192


def _tail(batch):
    """The batch without its first sample."""
    fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return dataclasses.replace(batch, **{k: v[1:] for k, v in fields.items() if v is not None})


def _identity_is_noise(insp: Inspection, sample: int) -> bool:
    return bool(insp.detail.identity[sample].abs().max() < 1e-4)  # tie-break noise, std 1e-5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DepthModel(height=H, width=W, pretrained=False)


@pytest.fixture(scope="module")
def drive(synthetic_root):
    return next(d for d in synthetic_drives(synthetic_root) if d.split == "test")


@pytest.fixture(scope="module")
def pair(synthetic_root, drive):
    """Batch and truth of two samples: a stationary pair, then a driving frame."""
    samples = [(drive, drive.still_frame()), (drive, drive.moving_frame())]
    return synthetic_batch(synthetic_root, samples), synthetic_truth(synthetic_root, samples)


def test_drive_metadata_picks_still_and_moving_frames(synthetic_root, drive):
    a, b = drive.stationary
    assert a <= drive.still_frame() - 1 and drive.still_frame() + 1 <= b
    t = drive.moving_frame()
    assert t + 1 < a or t - 1 > b
    assert drive.folder.endswith("_drive_0004_sync")  # 2 train + 1 val drives come first


def test_batch_reads_the_rendered_frames(pair):
    batch, truth = pair
    assert batch.images.shape == (2, 3, 3, 80, 256)
    assert torch.equal(batch.images[:, 0], truth.image)  # re-rendered truth == files on disk
    still = batch.images[0].float()
    assert torch.equal(still[0], still[1]) and torch.equal(still[0], still[2])
    assert not torch.equal(batch.images[1, 0], batch.images[1, 1])
    assert truth.T_src_tgt.shape == (2, 2, 4, 4)
    assert torch.allclose(truth.T_src_tgt[0], torch.eye(4).expand(2, 4, 4), atol=1e-6)
    # Driving forward: the previous camera is behind the target (+z of target points).
    assert truth.T_src_tgt[1, 0, 2, 3] > 0.5 and truth.T_src_tgt[1, 1, 2, 3] < -0.5


def test_right_camera_and_stereo_partner(synthetic_root, drive):
    samples = [(drive.index, drive.moving_frame())]
    batch = synthetic_batch(synthetic_root, samples, frame_ids=["0", "s"], side="r")
    truth = synthetic_truth(synthetic_root, samples, frame_ids=["0", "s"], side="r")
    assert torch.equal(batch.images[:, 0], truth.image)
    # Camera 2 sits 0.54 m left of camera 3: target points move +0.54 m in x.
    expected = torch.eye(4)
    expected[0, 3] = 0.54
    assert torch.allclose(truth.T_src_tgt[0, 0], expected, atol=1e-5)


def test_bad_samples_raise(synthetic_root, drive, tmp_path):
    with pytest.raises(ValueError, match="reaches outside"):
        synthetic_batch(synthetic_root, [(drive, drive.frames - 1)])
    with pytest.raises(ValueError, match="no drive 'nowhere'"):
        synthetic_batch(synthetic_root, [("nowhere", 3)])
    with pytest.raises(ValueError, match="side='x'"):
        synthetic_truth(synthetic_root, [(drive, 3)], side="x")
    with pytest.raises(FileNotFoundError, match="synthetic.json"):
        synthetic_drives(tmp_path)


def test_inspection_holds_every_intermediate_on_cpu(model, pair):
    batch, _ = pair
    model.train()
    insp = inspect_batch(model, batch)
    assert model.training  # mode restored
    d = insp.detail
    assert d.target.shape == (2, 3, H, W) and d.sources.shape == (2, 2, 3, H, W)
    assert d.identity.shape == (2, 2, H, W)
    assert [tuple(x.shape[-2:]) for x in insp.disps] == [(64, 192), (32, 96), (16, 48), (8, 24)]
    for s in range(4):
        sd = insp.scale(s)
        assert sd.warped.shape == (2, 2, 3, H, W) and sd.reprojection.shape == (2, 2, H, W)
        assert sd.smoothness_weights.shape[-2:] == (H // 2**s, W // 2**s - 1)
    tensors = [d.target, d.identity, *insp.disps, insp.scale(3).warped, insp.winner()]
    assert all(t.device.type == "cpu" and not t.requires_grad for t in tensors)
    assert insp.term_names == ["identity -1", "identity 1", "warped -1", "warped 1"]
    assert set(insp.terms) == {"loss", "reprojection", "smoothness"}


def test_winner_and_mask_follow_from_the_errors(model, pair):
    batch, _ = pair
    insp = inspect_batch(model, batch)
    for s in range(4):
        sd = insp.scale(s)
        candidates = torch.cat([insp.detail.identity, sd.reprojection], dim=1)
        assert torch.equal(sd.result.winner, candidates.argmin(1, keepdim=True))
        assert torch.equal(sd.result.loss, candidates.min(1, keepdim=True).values)
        best_identity = insp.detail.identity.min(1, keepdim=True).values
        kept = sd.reprojection.min(1, keepdim=True).values < best_identity
        assert torch.equal(insp.automask(s), kept)
    mean_min = torch.stack([insp.scale(s).result.loss.mean() for s in range(4)]).mean()
    assert insp.terms["reprojection"] == pytest.approx(float(mean_min), rel=1e-5)


def test_inspection_repeats_and_accepts_views(model, pair):
    batch, _ = pair
    state = torch.get_rng_state()
    a = inspect_batch(model, batch, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # global random state untouched
    b = inspect_batch(model, prepare_batch(batch, H, W), seed=3)
    assert torch.equal(a.detail.identity, b.detail.identity)
    assert torch.equal(a.automask(), b.automask())
    c = inspect_batch(model, batch, seed=4)
    assert not torch.equal(a.detail.identity, c.detail.identity)  # only the tie-break noise
    assert torch.allclose(a.detail.identity, c.detail.identity, atol=1e-3)


def test_automask_covers_a_stationary_pair(model, pair):
    """Identity errors of a stationary pair are zero, so any motion the network predicts
    loses to them: with the true depth and a driving motion (the network cannot know the rig
    stood still), every pixel is switched off; a moving frame keeps most of its pixels."""
    batch, truth = pair
    assert _identity_is_noise(inspect_batch(model, batch), sample=0)
    driving = truth.T_src_tgt[1:].expand(2, -1, -1, -1)
    insp = inspect_batch(truth_model(model, dataclasses.replace(truth, T_src_tgt=driving)), batch)
    masked = insp.masked_fraction()
    assert masked[0] > 0.95, f"only {masked[0]:.2f} of the stationary pair masked"
    assert masked[1] < 0.4, f"{masked[1]:.2f} of a driving frame masked"


def test_automask_covers_the_car_moving_with_the_camera(model, pair):
    """The car drives with the rig, so it is static in the image: the un-warped sources explain
    it, the true static-world warp does not. Masked, it gives no gradient; unmasked, the loss
    would prefer it at infinite depth (the 'hole' of Godard et al. 2019, Fig. 5)."""
    batch, truth = pair
    car = truth.region(MOVING_CAR, (H, W))[1:]
    scene = ~truth.region(SKY, (H, W))[1:] & ~car
    assert car.sum() > 50
    moving = dataclasses.replace(
        truth, **{k: getattr(truth, k)[1:] for k in ("depth", "T_src_tgt")}
    )
    insp = inspect_batch(truth_model(model, moving), _tail(batch))
    ident, reproj = insp.detail.identity[0], insp.scale(0).reprojection[0]
    assert ident[:, car[0, 0]].median() < 1e-3 < 0.01 < reproj[:, car[0, 0]].median()
    assert insp.masked_fraction(region=car)[0] > 0.8
    assert insp.masked_fraction(region=scene)[0] < 0.25  # the static scene is trained on

    # Without the auto-mask, the car's loss is lower at infinite depth than at its true depth.
    far = dataclasses.replace(
        moving, depth=torch.where(truth.region(MOVING_CAR)[1:], 0.0, moving.depth)
    )
    car_loss = {}
    for name, t in (("true", moving), ("far", far)):
        oracle = truth_model(model, t)
        oracle.objective = dataclasses.replace(oracle.objective, disable_automasking=True)
        result = inspect_batch(oracle, _tail(batch)).scale(0).result
        car_loss[name] = float(result.loss[car].mean())
    assert car_loss["far"] < 0.5 * car_loss["true"], car_loss


def test_truth_scores_better_than_an_untrained_network(model, pair):
    batch, truth = pair
    net = inspect_batch(model, batch).terms["reprojection"]
    best = inspect_batch(truth_model(model, truth), batch).terms["reprojection"]
    assert best < 0.3 * net


def test_truth_model_checks_its_batch(model, pair):
    batch, truth = pair
    oracle = truth_model(model, truth)
    with pytest.raises(ValueError, match="built for a batch of 2, got 1"):
        inspect_batch(oracle, _tail(batch))
    stereo = DepthModel(height=H, width=W, pretrained=False, frame_ids=["0", "-1", "1", "s"])
    with pytest.raises(ValueError, match="truth has 2 sources"):
        truth_model(stereo, truth)


def test_panels_are_pictures(model, pair):
    batch, _ = pair
    insp = inspect_batch(model, batch)
    panels = insp.panels(sample=1, s=2)
    assert "auto-mask (white = kept)" in panels and "warped -1 (scale 2)" in panels
    assert panels["disparity (scale 2)"].shape == (3, 16, 48)
    for name, picture in panels.items():
        assert picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1, name
    mask = panels["auto-mask (white = kept)"][0]
    assert torch.equal(mask.bool(), insp.automask(2)[1, 0])
    assert len(insp.disparity_panels(0)) == 4
    fig = show_panels(panels, ncols=4)
    titled = [ax.get_title().replace("\n", " ") for ax in fig.axes if ax.get_title()]
    assert titled == list(panels)


def test_v1_multiscale_panels_at_a_coarse_scale(pair):
    model = DepthModel(height=H, width=W, pretrained=False, v1_multiscale=True)
    panels = inspect_batch(model, pair[0]).panels(sample=0, s=2)
    assert panels["reprojection error 1"].shape == (3, 16, 48)
    assert "identity error 1" not in panels  # only kept at full resolution


def test_winner_picture_shows_masked_pixels_in_grey(model, pair):
    insp = inspect_batch(model, pair[0])
    legend, picture = insp.winner_picture(sample=1)
    assert legend == "black=identity -1, grey=identity 1, blue=warped -1, orange=warped 1"
    grey = (picture == picture[:1]).all(0)  # identity colours have equal channels
    assert torch.equal(grey, ~insp.automask()[1, 0])
    assert 0 < grey.float().mean() < 1  # both kinds present in a driving frame


def test_supervised_model_cannot_be_inspected(pair):
    model = DepthModel(height=H, width=W, pretrained=False, training_mode="supervised")
    with pytest.raises(ValueError, match="training_mode='supervised'"):
        inspect_batch(model, pair[0])


def test_load_model_round_trip(model, tmp_path):
    import pytorch_lightning as pl

    path = tmp_path / "m.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    loaded = load_model(path)
    assert not loaded.training and loaded.hparams.height == H
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.ckpt"):
        load_model(tmp_path / "bad.ckpt")
