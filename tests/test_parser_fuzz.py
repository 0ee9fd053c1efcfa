"""Fuzzed split, calibration and pose files: a parser returns sound values or raises
:class:`DataFormatError` (a ValueError naming the file), never anything else."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mono.data import calib
from mono.data.errors import DataFormatError
from mono.data.splits import SIDES, read_split
from mono.evaluation.pose import read_odometry_poses

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

VALID_SPLIT = (
    "2011_09_26/2011_09_26_drive_0001_sync 1 l\n2011_09_26/2011_09_26_drive_0001_sync 2 r\n"
)
VALID_CAM_TO_CAM = (
    "calib_time: 09-Jan-2012 13:57:47\n"
    "R_rect_00: 1 0 0 0 1 0 0 0 1\n"
    "S_rect_02: 8.0 6.0\n"
    "P_rect_02: 4.0 0.0 4.5 0.24 0.0 5.0 3.2 0.0 0.0 0.0 1.0 0.0\n"
    "S_rect_03: 8.0 6.0\n"
    "P_rect_03: 4.0 0.0 4.5 -1.92 0.0 5.0 3.2 0.0 0.0 0.0 1.0 0.0\n"
)
VALID_VELO_TO_CAM = "calib_time: 15-Mar-2012 11:37:16\nR: 0 -1 0 0 0 -1 1 0 0\nT: 0 0 0\n"
VALID_POSES = "1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0.5 0 1 0 0 0 0 1 1.5\n"

# Pieces a corrupted file might hold: separators, signs, exponents, odd numbers and characters.
TOKENS = st.sampled_from(
    [" ", "\n", "\t", ":", "-", ".", "e", "e999", "nan", "inf", "0", "1", "l", "r", "s", "\ufeff",
     "\x00", "²", "١", "1_0", "P_rect_02:", "S_rect_02:", "R:", "T:", "\r\n", "\u2028", "é"]
)  # fmt: skip


@st.composite
def mutated(draw, text: str) -> bytes:
    """``text`` with a few random insertions, deletions and replacements (UTF-8 bytes), or a
    few raw bytes spliced in."""
    data = text
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(TOKENS, st.text(max_size=4)))
        span = draw(st.integers(0, 8))
        if action == "insert":
            data = data[:at] + piece + data[at:]
        elif action == "delete":
            data = data[:at] + data[at + span :]
        else:
            data = data[:at] + piece + data[at + len(piece) :]
    raw = data.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at:]
    return raw


def _file_bytes(valid: str):
    return st.one_of(st.binary(max_size=300), mutated(valid))


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=_file_bytes(VALID_SPLIT), stage=st.sampled_from(["train", "test"]))
def test_split_files(data, stage):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), f"{stage}_files.txt", data)
        try:
            entries = read_split(path)
        except DataFormatError as err:
            assert str(path) in str(err)
            return
    for entry in entries:
        assert entry.folder and not any(c.isspace() for c in entry.folder)
        assert isinstance(entry.frame, int) and entry.frame >= 0
        assert entry.side in SIDES and entry.line >= 1


@FUZZ
@given(cam=_file_bytes(VALID_CAM_TO_CAM), velo=_file_bytes(VALID_VELO_TO_CAM))
def test_calibration_files(cam, velo):
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), calib.CAM_TO_CAM, cam)
        _write(Path(tmp), calib.VELO_TO_CAM, velo)
        for read in (
            lambda: calib.normalised_intrinsics(tmp, 2),
            lambda: calib.stereo_baseline(tmp),
            lambda: calib.velo_to_cam_rect(tmp),
        ):
            try:
                value = read()
            except DataFormatError as err:
                assert tmp in str(err)
                continue
            assert np.all(np.isfinite(value))


@FUZZ
@given(data=_file_bytes(VALID_POSES))
def test_pose_files(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "poses.txt", data)
        try:
            poses = read_odometry_poses(path)
        except DataFormatError as err:
            assert str(path) in str(err)
            return
    assert poses.ndim == 3 and poses.shape[1:] == (4, 4)
    assert np.all(np.isfinite(poses))
    assert np.array_equal(poses[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (len(poses), 1)))


def test_the_valid_files_parse():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        assert len(read_split(_write(folder, "train_files.txt", VALID_SPLIT.encode()))) == 2
        _write(folder, calib.CAM_TO_CAM, VALID_CAM_TO_CAM.encode())
        _write(folder, calib.VELO_TO_CAM, VALID_VELO_TO_CAM.encode())
        assert calib.stereo_baseline(folder) == 0.54
        assert read_odometry_poses(_write(folder, "poses.txt", VALID_POSES.encode())).shape == (
            2, 4, 4,
        )  # fmt: skip


def test_what_the_fuzzer_found_is_named(tmp_path):
    split = _write(tmp_path, "train_files.txt", b"d/x 1 l\n\x80\n")
    with pytest.raises(DataFormatError) as info:
        read_split(split)
    assert str(info.value) == f"{split}: not a UTF-8 text file (byte 8 is 0x80)"
    superscript = _write(tmp_path, "val_files.txt", "d/x ² l\n".encode())
    with pytest.raises(DataFormatError) as info:
        read_split(superscript)
    assert str(info.value) == (
        f"{superscript}:1: expected 'folder frame side' (side l|r), frame '²' is not a "
        "non-negative integer: 'd/x ² l'"
    )
    poses = _write(tmp_path, "poses.txt", b"1 0 0 0 0 1 0 0 0 0 1 nan\n")
    with pytest.raises(DataFormatError) as info:
        read_odometry_poses(poses)
    assert str(info.value) == (
        f"{poses}:1: expected 12 finite numbers (a 3 x 4 pose), got '1 0 0 0 0 1 0 0 0 0 1 nan'"
    )
