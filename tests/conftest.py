"""Shared test set-up: one torch thread (CI has 2 cores), offline wandb, synthetic drives."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see mono/__init__.py
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A small set of synthetic KITTI-layout drives, rendered once per test session."""
    from mono.data.synth import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synthetic"), seed=0, preset="tiny")
