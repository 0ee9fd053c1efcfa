"""Fixtures of the data tests."""

from pathlib import Path

import pytest
from kitti_tree import write_kitti_tree


@pytest.fixture
def kitti_root(tmp_path) -> Path:
    """A fresh tiny KITTI raw tree (see :func:`kitti_tree.write_kitti_tree`)."""
    return write_kitti_tree(tmp_path / "kitti")
