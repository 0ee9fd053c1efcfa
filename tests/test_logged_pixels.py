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
