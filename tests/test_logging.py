"""Watching a run: scalars and the loss's pictures reach TensorBoard and an offline wandb run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mono.callbacks import ImageLogger, Throughput
from mono.data.datamodule import KittiDataModule
from mono.module import DepthModel
from mono.visualize import LEGEND_ROW, winner_colours

PANELS = sorted(
    ["automask", "disparity", "target", "warped_source", "winner"]
    + [f"disparity_scale{s}" for s in (1, 2, 3)]
)


class RngCheckingImageLogger(ImageLogger):
    """Records whether logging pictures moved the global RNG (it must not: same weights)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.moved: list[bool] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        before = torch.get_rng_state()
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.moved.append(not torch.equal(before, torch.get_rng_state()))


def _decode(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


@pytest.mark.slow
def test_tensorboard_and_wandb_get_scalars_and_images(synthetic_root, tmp_path):
    import wandb

    pl.seed_everything(0, workers=True)
    data = KittiDataModule(
        root=str(synthetic_root),
        split="splits",
        height=64,
        width=192,
        batch_size=2,
        num_workers=0,
        intrinsics="calib",
        limit_train_samples=4,
    )
    model = DepthModel(height=64, width=192, pretrained=False)
    tb = TensorBoardLogger(str(tmp_path), name="tb")
    wb = WandbLogger(project="mono-test", save_dir=str(tmp_path), offline=True)
    images = RngCheckingImageLogger(every_n_steps=1, max_images=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        log_every_n_steps=1,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        logger=[tb, wb],
        callbacks=[LearningRateMonitor(logging_interval="step"), Throughput(), images],
    )
    try:
        trainer.fit(model, data)
        run_dir = wb.experiment.dir
    finally:
        wandb.finish()

    # The progress bar shows the loss and the throughput.
    assert {"loss", "img/s"} <= set(trainer.progress_bar_metrics)
    assert images.moved == [False, False]

    events = EventAccumulator(tb.log_dir, size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/reprojection",
        "train/smoothness",
        "train/images_per_sec",
        "lr-Adam",
    } <= scalars, scalars
    assert [f"images/{p}" for p in PANELS] == sorted(events.Tags()["images"])
    disparity = events.Images("images/disparity")
    assert [e.step for e in disparity] == [1, 2]
    picture = _decode(disparity[-1])
    assert picture.shape[0] == 64 and picture.shape[1] >= 2 * 192  # two samples side by side
    assert np.ptp(picture.astype(int), axis=2).max() > 50  # magma: coloured, not grey
    mask = _decode(events.Images("images/automask")[-1])
    assert set(np.unique(mask)) <= {0, 255} and (mask == 255).any()  # binary, some pixels used
    for s in (1, 2, 3):  # every decoder scale at its own size
        coarse = _decode(events.Images(f"images/disparity_scale{s}")[-1])
        assert coarse.shape[0] == 64 >> s and coarse.shape[1] >= 2 * (192 >> s)
        assert np.ptp(coarse.astype(int), axis=2).max() > 50

    # The winner panel: the picture in the shared palette, and its legend written beneath.
    names = ["identity -1", "identity 1", "warped -1", "warped 1"]
    palette = np.array([rgb for _, rgb in winner_colours(names)]) * 255
    winner = _decode(events.Images("images/winner")[-1]).astype(int)
    assert winner.shape[0] == 64 + LEGEND_ROW * len(names)
    picture = winner[:64].reshape(-1, 3)
    nearest = np.abs(picture[:, None] - palette.round()[None]).max(axis=2).min(axis=1)
    assert nearest.max() <= 1  # every pixel is one of the four candidates' colours
    for row, rgb in enumerate(palette.round()):  # each swatch has its candidate's colour
        swatch = winner[64 + row * LEGEND_ROW + LEGEND_ROW // 2, LEGEND_ROW // 2]
        assert np.abs(swatch - rgb).max() <= 1, (row, swatch, rgb)
        text = winner[64 + row * LEGEND_ROW : 64 + (row + 1) * LEGEND_ROW, LEGEND_ROW + 2 : 96]
        assert (text.sum(axis=2) < 200).any()  # dark letters of the name beside it

    # wandb (offline) stores each logged picture as a file in the run's media folder.
    media = {p.name.split("_")[0] for p in Path(run_dir).rglob("*.png")}
    assert {"disparity", "automask"} <= media, media


def test_test_table_prints_model_and_constant_baseline(capsys):
    """`mono test` ends with the model's metrics beside the constant depth's (RunSummary)."""
    from types import SimpleNamespace

    from mono.callbacks import RunSummary

    metrics = {
        "test/abs_rel": torch.tensor(0.25), "test/rmse": torch.tensor(3.0),
        "test/a1": torch.tensor(0.7), "test/baseline_abs_rel": torch.tensor(0.5),
        "test/baseline_rmse": torch.tensor(6.0), "test/baseline_a1": torch.tensor(0.35),
    }  # fmt: skip
    RunSummary().on_test_end(SimpleNamespace(is_global_zero=True, callback_metrics=metrics), None)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == ["model", "0.2500", "3.0000", "0.7000"]
    assert lines[2].split()[-3:] == ["0.5000", "6.0000", "0.3500"]
    assert lines[3] == "abs_rel 50.0% lower than the baseline"
    RunSummary().on_test_end(SimpleNamespace(is_global_zero=True, callback_metrics={}), None)
    assert capsys.readouterr().out == ""
