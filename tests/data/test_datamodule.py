import sys
import types

import pytest
import pytorch_lightning as pl
import torch
from kitti_tree import H, W, write_kitti_tree

from mono.data.augment import prepare_batch
from mono.data.datamodule import KittiDataModule
from mono.data.splits import SPLITS_DIR
from mono.types import Batch


def _module(root, **kwargs) -> KittiDataModule:
    options = dict(split="splits/tiny", height=32, width=64, batch_size=2, num_workers=0)
    options.update(kwargs)
    return KittiDataModule(str(root), **options)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"height": 100}, r"data\.height=100 must be a positive multiple of 32"),
        ({"width": 0}, r"data\.width=0"),
        ({"intrinsics": "fixed"}, r"data\.intrinsics='fixed'"),
        ({"depth": "sparse"}, r"data\.depth='sparse'"),
        ({"img_ext": "bmp"}, r"data\.img_ext='bmp'"),
        ({"stereo_baseline": "wide"}, r"data\.stereo_baseline='wide'"),
        ({"batch_size": 0}, r"data\.batch_size=0 must be >= 1"),
        ({"num_workers": -1}, r"data\.num_workers=-1"),
        ({"limit_train_samples": 0}, r"data\.limit_train_samples=0"),
        ({"frame_ids": ["1", "0"]}, r"data\.frame_ids=\['1', '0'\]: the target frame"),
        ({"split": "nope"}, r"data\.split: unknown split 'nope'.*eigen_zhou"),
        ({"val_split": "nope"}, r"data\.val_split: unknown split"),
        ({"dataset": "nuscenes"}, r"data\.dataset='nuscenes': choose one of \['kitti_raw', "),
        (
            {"frame_stride": 2},
            r"data\.frame_stride=2 applies to data\.dataset=video only \(data\.dataset=kitti_raw\)",
        ),
        ({"static_threshold": 1.0}, r"data\.static_threshold=1\.0 applies to data\.dataset=video"),
    ],
)
def test_bad_options_name_the_option(kitti_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _module(kitti_root, **kwargs)


def test_split_files_of_each_stage(kitti_root):
    dm = _module(kitti_root)
    tiny = kitti_root / "splits" / "tiny"
    assert dm.split_file("train") == tiny / "train_files.txt"
    assert dm.split_file("val") == tiny / "val_files.txt"
    assert dm.split_file("test") == SPLITS_DIR / "eigen" / "test_files.txt"  # tiny has none
    assert _module(kitti_root, split="eigen_zhou").split_file("val") == (
        SPLITS_DIR / "eigen_zhou" / "val_files.txt"
    )
    with pytest.raises(ValueError, match=r"data\.test_split: split 'eigen_zhou' has no test"):
        _module(kitti_root, test_split="eigen_zhou").split_file("test")


def test_setup_checks_files_before_training(kitti_root):
    dm = _module(kitti_root, split="eigen_zhou")
    with pytest.raises(FileNotFoundError, match="train_files.txt:1"):
        dm.setup("fit")


def test_batch_size_larger_than_the_split(kitti_root):
    dm = _module(kitti_root, limit_train_samples=1)
    with pytest.raises(ValueError, match=r"data\.batch_size=2 exceeds the 1 training samples"):
        dm.setup("fit")


def test_train_batch_end_to_end(kitti_root):
    dm = _module(kitti_root, frame_ids=["0", "-1", "1", "s"], limit_train_samples=4)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4 and dm.datasets["val"].depth_source == "lidar"
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == 2  # 4 samples, batch size 2
    batch = batches[0]
    assert isinstance(batch, Batch)
    assert batch.images.shape == (2, 4, 3, H, W) and batch.images.dtype == torch.uint8
    assert batch.depth_gt.shape == (2, 1, H, W)
    assert sorted(i for b in batches for i in b.index.tolist()) == [0, 1, 2, 3]
    moved = dm.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert isinstance(moved, Batch) and torch.equal(moved.images, batch.images)
    views = prepare_batch(moved, 32, 64)
    assert views.color.shape == (2, 4, 3, 32, 64)


def test_eval_loaders_are_deterministic(kitti_root):
    dm = _module(kitti_root, val_batch_size=1)
    dm.setup("validate")
    first = [b.index.tolist() for b in dm.val_dataloader()]
    assert first == [[0], [1]]
    batch = next(iter(dm.val_dataloader()))
    assert not batch.flip.any() and batch.jitter.tolist() == [[1.0, 1.0, 1.0, 0.0]]


def test_sampler_state_restores_the_position(kitti_root):
    dm = _module(kitti_root, seed=4)
    dm.setup("fit")
    iterator = iter(dm.train_dataloader())
    seen = next(iterator).index.tolist()
    state = dm.state_dict()
    assert state["train_sampler"]["consumed"] == 2
    rest = [i for b in iterator for i in b.index.tolist()]

    resumed = _module(kitti_root, seed=4)
    resumed.load_state_dict(state)  # Lightning restores before the loaders are built
    resumed.setup("fit")
    after = [i for b in resumed.train_dataloader() for i in b.index.tolist()]
    assert after == rest and sorted(seen + after) == list(range(6))


class _Recorder(pl.LightningModule):
    """Records which samples each training epoch sees."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: dict[int, list[tuple[int, bool]]] = {}

    def training_step(self, batch, batch_idx):
        assert isinstance(batch, Batch)
        pairs = list(zip(batch.index.tolist(), batch.flip.tolist(), strict=True))
        self.seen.setdefault(self.current_epoch, []).extend(pairs)
        return self.weight**2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_sets_the_sampler_epoch(kitti_root):
    # One persistent worker: its copy of the dataset never sees set_epoch, so the epoch must
    # travel with the sampled indices.
    dm = _module(kitti_root, seed=1, num_workers=1)
    model = _Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    dataset = dm.datasets["train"]
    for epoch in (0, 1):
        order = dm.train_sampler.__class__(len(dataset), seed=1)
        order.set_epoch(epoch)
        expected = [(i, dataset.draw_augmentation(i, epoch)[0]) for i in order]
        assert model.seen[epoch] == expected
    assert model.seen[0] != model.seen[1]


def test_prepare_data_synthesizes_only_a_missing_dataset(tmp_path, monkeypatch):
    calls = []

    def write_dataset(root, seed, preset):
        calls.append((str(root), seed, preset))
        return write_kitti_tree(root)

    # A stand-in for mono.data.synth: this test is about when the DataModule renders data.
    monkeypatch.setitem(
        sys.modules, "mono.data.synth", types.SimpleNamespace(write_dataset=write_dataset)
    )
    root = tmp_path / "synthetic"
    dm = _module(root, synthesize="tiny", seed=7)  # the split directory does not exist yet
    dm.prepare_data()
    assert calls == [(str(root), 7, "tiny")]
    dm.prepare_data()  # complete now: not rendered again
    assert len(calls) == 1
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 6
