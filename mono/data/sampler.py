"""A shuffling sampler whose order is a pure function of (seed, epoch), so training resumes exactly.

Each epoch's permutation comes from a private ``torch.Generator`` seeded by ``(seed, epoch)``,
never from the global RNG, so a run restarted from a checkpoint sees the same order. A resumed
epoch can skip the samples that were already consumed. Like ``DistributedSampler``, it shards
the permutation across ``num_replicas`` processes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys, e.g. ``(seed, epoch, index)``.

    ``numpy.random.SeedSequence`` hashes the keys, so neighbouring keys give unrelated streams
    (``seed + epoch`` would make epoch 1 of seed 0 equal epoch 0 of seed 1).
    """
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


# Subclassing DistributedSampler is only a marker: Lightning then keeps this sampler instead of
# wrapping it in its own distributed sampler (which would drop set_epoch and the resume skip).
class ResumableRandomSampler(DistributedSampler):
    """Epoch-seeded random order, sharded over replicas, able to skip into an epoch.

    Args:
        dataset_len: number of samples in the dataset.
        seed: base seed; the permutation of epoch ``e`` depends only on ``(seed, e)``.
        shuffle: permute (True) or keep ``0 .. N-1`` order (False).
        num_replicas: number of processes sharing the data (DDP world size).
        rank: this process's index in ``[0, num_replicas)``.
        drop_last: drop the tail so the permutation splits evenly; otherwise pad it by repeating
            its first indices (as ``DistributedSampler`` does), so every rank gets equally many.
        with_epoch: yield ``(epoch, index)`` pairs instead of indices. The dataset then draws its
            augmentation from the epoch carried by the index, which stays correct when
            persistent DataLoader workers hold an old copy of the dataset.
    """

    def __init__(
        self,
        dataset_len: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        with_epoch: bool = False,
    ) -> None:
        if dataset_len < 1:
            raise ValueError(f"ResumableRandomSampler: dataset_len={dataset_len} must be >= 1")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"ResumableRandomSampler: rank={rank} not in [0, {num_replicas})")
        if drop_last and dataset_len < num_replicas:
            raise ValueError(
                f"ResumableRandomSampler: {dataset_len} samples cannot feed {num_replicas} "
                "replicas with drop_last=True"
            )
        # DistributedSampler.__init__ is not called: it would query torch.distributed.
        self.dataset_len = dataset_len
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.with_epoch = with_epoch
        self.epoch = 0
        self.start = 0
        self.yielded = 0
        if drop_last:
            self.num_samples = dataset_len // num_replicas
        else:
            self.num_samples = math.ceil(dataset_len / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def indices(self) -> list[int]:
        """This rank's full index list for the current epoch (ignoring any skip)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.dataset_len, generator=generator).tolist()
        else:
            order = list(range(self.dataset_len))
        if self.total_size > len(order):
            repeats = math.ceil((self.total_size - len(order)) / len(order))
            order += (order * repeats)[: self.total_size - len(order)]
        order = order[: self.total_size]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator:
        order = self.indices()
        self.yielded = self.start
        for index in order[self.start :]:
            self.yielded += 1
            yield (self.epoch, index) if self.with_epoch else index
        self.start = 0  # a completed pass consumes the skip

    def __len__(self) -> int:
        # The full epoch length even while skipping: a training loop that restores its own batch
        # counter (Lightning) then ends the resumed epoch at the right batch.
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation is drawn; a pending skip survives only if the
        epoch is unchanged (Lightning calls this again on resume with the same epoch)."""
        if epoch != self.epoch:
            self.start = 0
        self.epoch = epoch

    def skip(self, n: int) -> None:
        """Start the next pass of the current epoch at this rank's ``n``-th index."""
        if not 0 <= n <= self.num_samples:
            raise ValueError(f"ResumableRandomSampler.skip: n={n} not in [0, {self.num_samples}]")
        self.start = n

    def state_dict(self, consumed: int | None = None, epoch_done: bool = False) -> dict[str, int]:
        """Position in the data stream: the next sample to draw.

        Args:
            consumed: indices of the current epoch this rank has really trained on (batches
                done x batch size). Defaults to how many the iterator handed out, which runs
                ahead of training by the DataLoader's prefetch.
            epoch_done: the training loop has taken the epoch's last batch. The position is
                then the start of the next epoch: a loader restored from it may draw its first
                indices (DataLoader workers prefetch when the iterator is created) before the
                training loop announces the new epoch, and must draw them from that epoch.
        """
        epoch, consumed = self.epoch, self.yielded if consumed is None else int(consumed)
        if epoch_done:
            epoch, consumed = epoch + 1, 0
        return {
            "seed": self.seed,
            "epoch": epoch,
            "consumed": consumed,
            "dataset_len": self.dataset_len,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume at ``state``: same epoch, skipping what was consumed.

        A state saved with another number of replicas (a run resumed on fewer or more GPUs)
        is converted: ranks take interleaved indices, so after ``k`` samples each the whole
        job has consumed the first ``k x replicas`` indices of the epoch's permutation, and
        each new rank skips ``k x old // new`` (fewer than ``new`` samples are seen twice).

        Raises:
            ValueError: the state comes from a dataset of another length, where the same
                position would mean different samples.
        """
        if "dataset_len" in state and state["dataset_len"] != self.dataset_len:
            raise ValueError(
                f"sampler state has dataset_len={state['dataset_len']} but this run has "
                f"{self.dataset_len}: cannot resume mid-epoch on different data"
            )
        consumed = int(state["consumed"])
        old_replicas = int(state.get("num_replicas", self.num_replicas))
        if old_replicas != self.num_replicas:
            consumed = consumed * old_replicas // self.num_replicas
            warnings.warn(
                f"resuming mid-epoch on {self.num_replicas} processes from a state saved on "
                f"{old_replicas}: each process skips {consumed} samples of epoch "
                f"{int(state['epoch'])}",
                stacklevel=2,
            )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.skip(min(consumed, self.num_samples))
