"""Distributed training: sharded sampling, reduced metrics, rank-0-only logs and checkpoints.

Two CPU processes (``ddp_fork``, gloo) train the real model on the synthetic drives; what each
rank saw is written to files, since the forked processes share nothing else with the test.
"""

from __future__ import annotations

import json
import os

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from mono.callbacks import AtomicCheckpointIO, LastCheckpoint, PreemptionCheckpoint
from mono.data.datamodule import KittiDataModule
from mono.data.sampler import ResumableRandomSampler
from mono.module import DepthModel


def test_sampler_position_converts_to_another_world_size():
    # Two ranks each consumed 3 indices, i.e. the first 6 of the epoch's permutation.
    old = [ResumableRandomSampler(12, seed=5, num_replicas=2, rank=r) for r in range(2)]
    order = [i for step in zip(*(s.indices() for s in old), strict=True) for i in step]
    state = old[0].state_dict(consumed=3)
    new = [ResumableRandomSampler(12, seed=5, num_replicas=3, rank=r) for r in range(3)]
    for sampler in new:
        with pytest.warns(UserWarning, match="saved on 2"):
            sampler.load_state_dict(state)
    remaining = sorted(i for s in new for i in s)
    assert remaining == sorted(order[6:])  # nothing seen twice, nothing skipped


def test_sampler_refuses_a_state_from_other_data():
    state = ResumableRandomSampler(12).state_dict(consumed=4)
    with pytest.raises(ValueError, match="dataset_len=12 .* 10"):
        ResumableRandomSampler(10).load_state_dict(state)


class CountingCheckpointIO(AtomicCheckpointIO):
    """Appends ``<rank> <path>`` to a log for every checkpoint written."""

    def __init__(self, log: str) -> None:
        self.log = log

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else -1
        with open(self.log, "a") as f:
            f.write(f"{rank} {path}\n")
        super().save_checkpoint(checkpoint, path, storage_options)


class RecordRanks(pl.Callback):
    """Writes ``rank<k>.json``: the rank's sampler shard and its reduced validation metric."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.record: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        sampler = trainer.datamodule.train_sampler
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            sampler_rank=sampler.rank,
            num_replicas=sampler.num_replicas,
            indices=sampler.indices(),
        )

    def on_validation_end(self, trainer, pl_module) -> None:
        self.record["val_abs_rel"] = float(trainer.callback_metrics["val/abs_rel"])
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as f:
            json.dump(self.record, f)


@pytest.mark.slow
def test_two_process_ddp_shards_data_reduces_metrics_and_saves_once(synthetic_root, tmp_path):
    pl.seed_everything(0, workers=True)
    data = KittiDataModule(
        root=str(synthetic_root),
        split="splits",
        height=64,
        width=192,
        batch_size=2,
        num_workers=0,
        intrinsics="calib",
        limit_train_samples=8,  # 4 per rank: 2 steps make one epoch
    )
    model = DepthModel(height=64, width=192, pretrained=False)
    ck = tmp_path / "checkpoints"
    log = tmp_path / "saves.log"
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        max_steps=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        logger=TensorBoardLogger(str(tmp_path), name="tb"),
        plugins=[CountingCheckpointIO(str(log))],
        callbacks=[
            ModelCheckpoint(dirpath=ck, filename="best-{step}", monitor="val/abs_rel"),
            LastCheckpoint(dirpath=str(ck), every_n_train_steps=2),
            PreemptionCheckpoint(),
            RecordRanks(str(tmp_path)),
        ],
    )
    trainer.fit(model, data)

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, record in enumerate(ranks):
        assert (record["rank"], record["sampler_rank"]) == (r, r)
        assert record["world_size"] == record["num_replicas"] == 2
    assert sorted(ranks[0]["indices"] + ranks[1]["indices"]) == list(range(8))  # disjoint shards
    # Each rank validated different samples; sync_dist makes both report the global mean.
    assert ranks[0]["val_abs_rel"] == ranks[1]["val_abs_rel"]

    # ddp_fork also hands rank 0's weights back through <root>/.temp.ckpt: not a checkpoint.
    saves = [line.split() for line in log.read_text().splitlines() if ".temp.ckpt" not in line]
    # Step 2 ends the epoch: last.ckpt waits for the epoch's validation (which wrote best).
    assert saves == [["0", str(ck / "best-step=2.ckpt")], ["0", str(ck / "last.ckpt")]]
    assert sorted(p.name for p in ck.iterdir()) == ["best-step=2.ckpt", "last.ckpt"]
    assert torch.load(ck / "last.ckpt", weights_only=True)["global_step"] == 2
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert len(events) == 1  # one logger writes: rank 0's
