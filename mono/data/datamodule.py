"""The Lightning DataModule over KITTI raw: splits -> datasets -> loaders of :class:`Batch`."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from mono.data.kitti import (
    DepthMode,
    ImgExt,
    IntrinsicsSource,
    StereoBaseline,
    check_options,
    worker_init_fn,
)
from mono.data.registry import DatasetName, dataset_entry
from mono.data.sample import SampleDataset, collate
from mono.data.sampler import ResumableRandomSampler
from mono.data.splits import has_stage, resolve_split_file
from mono.frame_ids import FrameId, parse_frame_ids
from mono.types import Batch

# The test list used when the training split has none (Eigen & Fergus 2014, 697 frames).
DEFAULT_TEST_SPLIT = "eigen"


class KittiDataModule(pl.LightningDataModule):
    """KITTI raw, KITTI odometry or your own videos for training, validation and test.

    Training batches are shuffled by a :class:`ResumableRandomSampler` whose order, flips and
    colour jitter all follow from (``seed``, epoch, index), so a resumed run repeats exactly.
    Images arrive at native size as uint8; :func:`mono.data.augment.prepare_batch` resizes and
    jitters them on the training device.

    Args:
        root: dataset root in the layout of ``dataset``.
        dataset: the layout of ``root`` (:mod:`mono.data.registry`): ``"kitti_raw"``
            (``<date>/<drive>/image_02/data/...``), ``"kitti_odom"`` (``sequences/NN/image_2``,
            split lines ``<sequence> <frame> <side>``) or ``"video"`` (sequences as folders of
            frames or video files, see :mod:`mono.data.video`). Default ``"kitti_raw"``.
        split: training split: a shipped name (``eigen_zhou``, ``eigen_full``, ``benchmark``,
            ...) or a directory of ``<stage>_files.txt``, also looked up under ``root``.
            Default ``"eigen_zhou"`` (Zhou et al. 2017, as Monodepth2).
        val_split: split whose ``val_files.txt`` validates; default None = ``split``'s.
        test_split: split whose ``test_files.txt`` tests; default None = ``split``'s if it has
            one, else ``"eigen"``.
        height: network input height in pixels, a multiple of 32. Default 192.
        width: network input width in pixels, a multiple of 32. Default 640.
        frame_ids: ``0`` first, then integer offsets and/or ``s`` (stereo partner), stored as
            strings. Default ``["0", "-1", "1"]`` (monocular). Test batches load only ``"0"``.
        batch_size: training batch size per process. Default 12.
        val_batch_size: validation/test batch size; default None = ``batch_size``.
        num_workers: DataLoader worker processes (0 = load in the main process). Default 4.
        img_ext: ``"png"``, ``"jpg"`` or ``"auto"`` (per folder). Default ``"auto"``.
        intrinsics: ``"monodepth2"`` (fixed average K) or ``"calib"`` (each date's ``P_rect``);
            for ``dataset="video"``, ``"learned"``: the camera is unknown, no intrinsics file
            is needed and ``model.learn_intrinsics`` must be true (the batches carry a
            placeholder K of 60 degrees that nothing warps with). Default ``"monodepth2"``.
        stereo_baseline: baseline in metres for the ``"s"`` frame, or ``"calib"``. Default 0.1
            (Monodepth2's convention; metric depth is then x5.4).
        depth: ground truth loaded for every stage: ``"none"``, ``"lidar"``, ``"dense"`` or
            ``"auto"`` (dense, else LiDAR, else none, decided per split). Default ``"auto"``.
        seed: seed of the training order and augmentation. Default 0.
        limit_train_samples: use only the first N lines of the training split; default None =
            all.
        synthesize: a preset of :func:`mono.data.synth.write_dataset` (``"default"``,
            ``"tiny"``); when set and ``root`` lacks a complete dataset, ``prepare_data``
            renders the synthetic drives there. They carry their own split files in
            ``root/splits``, so pair this with ``split: splits``. Default None.
        frame_stride: video only: use every N-th frame (for video shot faster than ~10 Hz,
            e.g. 3 for 30 fps). Default 1.
        static_threshold: video only: drop near-static frames whose mean absolute grey-level
            difference (0-255, on 64-pixel-wide thumbnails) to the last kept frame is below
            this; None keeps every frame. Default None.
        val_fraction: video only: fraction of the sequences held out for validation when
            ``split`` is ``"auto"`` (seeded by ``seed``). Default 0.1.
        cache_dir: video only: where video files are decoded once, as JPEG at the training size;
            default None = ``<root>/.frame_cache``.
    """

    def __init__(
        self,
        root: str,
        split: str = "eigen_zhou",
        val_split: str | None = None,
        test_split: str | None = None,
        height: int = 192,
        width: int = 640,
        frame_ids: list[FrameId] = ("0", "-1", "1"),  # type: ignore[assignment]
        batch_size: int = 12,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        img_ext: ImgExt = "auto",
        intrinsics: IntrinsicsSource = "monodepth2",
        stereo_baseline: StereoBaseline = 0.1,
        depth: DepthMode = "auto",
        seed: int = 0,
        limit_train_samples: int | None = None,
        synthesize: str | None = None,
        dataset: DatasetName = "kitti_raw",
        frame_stride: int = 1,
        static_threshold: float | None = None,
        val_fraction: float = 0.1,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("height", height), ("width", width)):
            if value < 32 or value % 32:
                raise ValueError(f"data.{name}={value} must be a positive multiple of 32")
        check_options(img_ext, intrinsics, depth, stereo_baseline, prefix="data.")
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("val_batch_size", val_batch_size, 1),
            ("num_workers", num_workers, 0),
            ("limit_train_samples", limit_train_samples, 1),
        ):
            if value is not None and value < low:
                raise ValueError(f"data.{name}={value} must be >= {low}")
        self.frame_ids = list(parse_frame_ids(frame_ids, name="data.frame_ids"))
        self.save_hyperparameters()
        self.root = Path(root)
        self.dataset_entry = dataset_entry(dataset)
        self.dataset_entry.check({**self.hparams, "frame_ids": self.frame_ids}, self.root)
        self.datasets: dict[str, SampleDataset] = {}
        self.train_sampler: ResumableRandomSampler | None = None
        self._pending_sampler_state: dict | None = None

    # ------------------------------------------------------------------ datasets
    def split_file(self, stage: str) -> Path:
        """The split file of a stage (``"train"``, ``"val"`` or ``"test"``)."""
        hp = self.hparams
        if stage == "train":
            split = hp.split
        elif stage == "val":
            split = hp.val_split or hp.split
        else:
            split = hp.test_split
            if split is None:
                split = hp.split if has_stage(hp.split, "test", self.root) else DEFAULT_TEST_SPLIT
        try:
            return resolve_split_file(split, stage, self.root)
        except ValueError as error:
            option = {"train": "split", "val": "val_split", "test": "test_split"}[stage]
            raise ValueError(f"data.{option}: {error}") from None

    def build_dataset(self, stage: str) -> SampleDataset:
        """An unchecked dataset of a stage, of the layout ``dataset`` names; training augments."""
        options = {**self.hparams, "frame_ids": self.frame_ids}
        return self.dataset_entry.build(options, self.root, stage, self.split_file)

    def _has_complete_dataset(self) -> bool:
        try:
            for stage in ("train", "val"):
                self.build_dataset(stage).check_files()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def prepare_data(self) -> None:
        """Render the synthetic drives into ``root`` when ``synthesize`` asks for it."""
        if self.hparams.synthesize and not self._has_complete_dataset():
            from mono.data.synth import write_dataset  # heavy, and only needed here

            write_dataset(self.root, seed=self.hparams.seed, preset=self.hparams.synthesize)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a Lightning stage needs and check all their files exist."""
        needed = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: ("train", "val", "test"),
        }[stage]
        for name in needed:
            if name not in self.datasets:
                dataset = self.build_dataset(name)
                dataset.check_files()
                self.datasets[name] = dataset
                if self.trainer is None or self.trainer.is_global_zero:
                    print(dataset.ground_truth.describe(name), flush=True)
        if stage in ("fit", None):
            self._check_monitors()
        train = self.datasets.get("train")
        if train is not None and len(train) < self.hparams.batch_size:
            raise ValueError(
                f"data.batch_size={self.hparams.batch_size} exceeds the {len(train)} training "
                f"samples of {train.split_file} (batches drop the incomplete last one)"
            )

    def _check_monitors(self) -> None:
        """Refuse a checkpoint or early-stopping monitor on a ``val/`` metric (all need ground
        truth) when the validation split has none; Lightning would fail only after an epoch."""
        val = self.datasets.get("val")
        if self.trainer is None or val is None or val.depth_source != "none":
            return
        trainer = self.trainer
        for callback in [*trainer.checkpoint_callbacks, *trainer.early_stopping_callbacks]:
            monitor = getattr(callback, "monitor", None)
            if not (isinstance(monitor, str) and monitor.startswith("val/")):
                continue
            needs = (
                f"{type(callback).__name__} monitors '{monitor}', a validation metric that needs "
                f"ground truth, but data.depth='{val.depth}'"
            )
            if val.depth == "none":
                raise ValueError(
                    f"{needs} loads none for {val.split_file}; set data.depth to 'auto', 'lidar' "
                    "or 'dense', or monitor another key"
                )
            raise ValueError(
                f"{needs} found none for {val.split_file}: {val.ground_truth.reason}; add the "
                "missing file, set data.depth='lidar' or 'dense' to list every missing file, or "
                "monitor another key"
            )

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset: SampleDataset, batch_size: int, **kwargs) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            worker_init_fn=worker_init_fn,
            # Each new iterator draws worker seeds from this generator; with the default (the
            # global RNG) a resumed run would shift the training noise stream by those draws.
            generator=torch.Generator().manual_seed(self.hparams.seed),
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled by (seed, epoch); Lightning calls the sampler's ``set_epoch`` each epoch."""
        dataset = self.datasets["train"]
        trainer = self.trainer
        sampler = ResumableRandomSampler(
            len(dataset),
            seed=self.hparams.seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            with_epoch=True,  # persistent workers keep a stale dataset.epoch
        )
        sampler.set_epoch(trainer.current_epoch if trainer else 0)
        if self._pending_sampler_state is not None:
            sampler.load_state_dict(self._pending_sampler_state)
            self._pending_sampler_state = None
        self.train_sampler = sampler
        return self._loader(dataset, self.hparams.batch_size, sampler=sampler, drop_last=True)

    def _eval_loader(self, stage: str) -> DataLoader:
        batch_size = self.hparams.val_batch_size or self.hparams.batch_size
        return self._loader(self.datasets[stage], batch_size, shuffle=False, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        if isinstance(batch, Batch):
            return batch.to(device, non_blocking=True)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        """Position of the training sampler (saved in checkpoints by Lightning).

        The consumed count is the batches the fit loop has processed this epoch times the batch
        size, which matches how Lightning restores its own batch counter.
        """
        if self.train_sampler is None:
            return {}
        consumed, epoch_done = None, False
        trainer = self.trainer
        if trainer is not None:
            progress = trainer.fit_loop.epoch_loop.batch_progress
            consumed = progress.current.processed * self.hparams.batch_size
            epoch_done = progress.is_last_batch and progress.current.processed > 0
        return {"train_sampler": self.train_sampler.state_dict(consumed, epoch_done)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the sampler position, now or when the train loader is next built."""
        state = state_dict.get("train_sampler")
        if state is None:
            return
        if self.train_sampler is not None:
            self.train_sampler.load_state_dict(state)
        else:
            self._pending_sampler_state = state
