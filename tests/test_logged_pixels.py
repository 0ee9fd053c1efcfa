"""The pictures that reach TensorBoard and wandb hold the logged panels' pixels, not black.

Each panel is (N, 3, H, W) in [0, 1]; a viewer shows it as 8-bit RGB, i.e. round(x * 255).
The written files are read back and compared pixel by pixel (within 1 grey level: TensorBoard
truncates rather than rounds).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mono.callbacks import log_images
from mono.visualize import colorize

STEP = 3


@pytest.fixture
def panels() -> dict[str, torch.Tensor]:
    """Two 16x24 samples per panel: a colour-mapped disparity ramp and a grey-level ramp."""
    ramp = torch.linspace(0.05, 0.95, 24).expand(2, 1, 16, 24).clone()
    ramp[1] = ramp[1].flip(-1)  # the two samples differ
    return {"disparity": colorize(ramp), "target": ramp.expand(-1, 3, -1, -1) * 0.7}


def _as_uint8(picture: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8 as a viewer shows it."""
    return (picture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _assert_same_picture(written: np.ndarray, expected: np.ndarray) -> None:
    assert written.shape == expected.shape
    assert np.ptp(written) > 100, "written picture is (nearly) constant"
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_tensorboard_pictures_hold_the_panel_pixels(panels, tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    log_images(logger, panels, STEP)
    logger.experiment.flush()

    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["images/disparity", "images/target"]
    for name, images in panels.items():
        (event,) = events.Images(f"images/{name}")
        assert event.step == STEP
        written = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
        # TensorBoard tiles the N samples of one step side by side.
        expected = np.concatenate([_as_uint8(img) for img in images], axis=1)
        _assert_same_picture(written, expected)


def test_wandb_pictures_hold_the_panel_pixels(panels, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(project="mono-test", save_dir=str(tmp_path), offline=True)
    try:
        log_images(logger, panels, STEP)
        media = Path(logger.experiment.dir) / "media" / "images"
    finally:
        wandb.finish()

    for name, images in panels.items():
        # One PNG per sample, <name>_<wandb step>_<content hash>.png: equal pictures share one.
        files = sorted(media.rglob(f"{name}_*.png"))
        written = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        expected = [_as_uint8(img) for img in images]
        # File names carry a content hash, not the sample index: match each file to a sample.
        for picture in written:
            errors = [np.abs(picture.astype(int) - e.astype(int)).max() for e in expected]
            _assert_same_picture(picture, expected[int(np.argmin(errors))])
        assert len(files) == len(images), files


def test_validation_panels_compare_prediction_and_ground_truth_pixel_by_pixel():
    from mono.visualize import ERROR_VMAX, validation_panels

    gt = torch.zeros(1, 1, 4, 6)
    gt[0, 0, :2] = torch.linspace(2.0, 20.0, 12).view(2, 6)  # top half: valid, bottom: none
    pred = 0.5 * gt + 1.0 * (gt == 0)  # right up to a scale of 2 where gt exists
    image = torch.rand(1, 3, 4, 6)
    panels = validation_panels(image, pred, gt)
    assert sorted(panels) == ["val_error", "val_ground_truth", "val_image", "val_prediction"]
    assert torch.equal(panels["val_image"], image)
    valid = (gt > 0).expand(-1, 3, -1, -1)
    # Median scaling makes the prediction the ground truth: same colours where gt exists.
    assert torch.allclose(panels["val_prediction"][valid], panels["val_ground_truth"][valid])
    assert panels["val_ground_truth"][valid].std() > 0.1  # a real gradient, not one colour
    # No error: inferno's first colour on valid pixels; black where there is no ground truth.
    inferno_zero = colorize(torch.zeros(1, 1, 1, 1), "inferno", vmax=ERROR_VMAX)[0, :, 0, 0]
    error = panels["val_error"][0]
    assert torch.allclose(error[:, :2], inferno_zero[:, None, None].expand(3, 2, 6), atol=1e-6)
    assert torch.equal(error[:, 2:], torch.zeros(3, 2, 6))
    assert torch.equal(panels["val_ground_truth"][0][:, 2:], torch.zeros(3, 2, 6))
    # A wrong pixel shows the error colour for its relative error.
    pred_bad = pred.clone()
    pred_bad[0, 0, 0, 0] *= 1.25  # +25 % after scaling; the median is unchanged
    bad = validation_panels(image, pred_bad, gt)["val_error"][0, :, 0, 0]
    expected = colorize(torch.full((1, 1, 1, 1), 0.25), "inferno", vmax=ERROR_VMAX)[0, :, 0, 0]
    assert torch.allclose(bad, expected, atol=1e-6)


@pytest.mark.slow
def test_every_validation_logs_its_panels_to_tensorboard(synthetic_root, tmp_path):
    import pytorch_lightning as pl

    from mono.callbacks import ImageLogger
    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    pl.seed_everything(0)
    data = KittiDataModule(
        root=str(synthetic_root), split="splits", height=64, width=192, batch_size=2,
        num_workers=0, intrinsics="calib", limit_train_samples=4,
    )  # fmt: skip
    model = DepthModel(height=64, width=192, pretrained=False, eval_crop="none")
    tb = TensorBoardLogger(str(tmp_path), name="tb")
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=2, limit_val_batches=1, num_sanity_val_steps=0,
        enable_model_summary=False, enable_checkpointing=False, enable_progress_bar=False,
        logger=tb, callbacks=[ImageLogger(every_n_steps=0, max_images=2)],
    )  # fmt: skip
    trainer.fit(model, data)
    events = EventAccumulator(tb.log_dir, size_guidance={"images": 0})
    events.Reload()
    names = ["val_error", "val_ground_truth", "val_image", "val_prediction"]
    assert sorted(events.Tags()["images"]) == [f"images/{n}" for n in names]
    steps = [e.step for e in events.Images("images/val_ground_truth")]
    assert steps == [2, 4]  # one per validation (2 steps an epoch)
    picture = np.asarray(
        Image.open(io.BytesIO(events.Images("images/val_ground_truth")[-1].encoded_image_string))
    )
    assert np.ptp(picture) > 100  # the ground truth shows, not a constant picture
