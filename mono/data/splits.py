"""Split files: which KITTI frames a stage uses, one ``folder frame side`` line per sample.

The standard splits (Eigen & Fergus, Zhou et al., the KITTI depth benchmark, odometry) ship
with the package under :data:`SPLITS_DIR`, in the layout Monodepth2 uses:
``splits/<name>/<stage>_files.txt``. A split may also be any directory holding such files.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from mono.data.errors import DataFormatError, read_text_file

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
STAGES = ("train", "val", "test")
SIDES = ("l", "r")


class SplitEntry(NamedTuple):
    """One sample of a split file.

    Attributes:
        folder: drive folder relative to the dataset root, e.g.
            ``2011_09_26/2011_09_26_drive_0022_sync``.
        frame: frame number inside the drive (>= 0).
        side: ``"l"`` (camera 2) or ``"r"`` (camera 3).
        line: 1-based line in the split file, for error messages (0 when built by hand).
    """

    folder: str
    frame: int
    side: str
    line: int = 0


def available_splits() -> list[str]:
    """Names of the splits shipped with mono, sorted."""
    return sorted(p.name for p in SPLITS_DIR.iterdir() if p.is_dir())


def split_directory(split: str, root: str | Path | None = None) -> Path:
    """Directory of a split given by shipped name or by path.

    Args:
        split: a name from :func:`available_splits`, or a directory of ``<stage>_files.txt``.
            A relative directory that does not exist is also looked up under ``root``, so a
            dataset may carry its own splits (e.g. ``root/splits/...`` of the synthetic drives).
        root: dataset root for that second look-up.

    Raises:
        ValueError: neither a shipped split nor an existing directory; lists the shipped names.
    """
    if split in available_splits():
        return SPLITS_DIR / split
    candidates = [Path(split)]
    if root is not None and not Path(split).is_absolute():
        candidates.append(Path(root) / split)
    for path in candidates:
        if path.is_dir():
            return path
    raise ValueError(
        f"unknown split '{split}': choose one of {available_splits()} "
        f"or give a directory containing <stage>_files.txt"
    )


def resolve_split_file(split: str, stage: str, root: str | Path | None = None) -> Path:
    """Path of ``<stage>_files.txt`` of a split (see :func:`split_directory` for ``split``).

    Raises:
        ValueError: unknown stage, unknown split, or the split has no file for this stage.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}': expected one of {list(STAGES)}")
    directory = split_directory(split, root)
    path = directory / f"{stage}_files.txt"
    if not path.is_file():
        present = sorted(p.name for p in directory.glob("*_files*.txt"))
        raise ValueError(f"split '{split}' has no {path.name} in {directory} (it has {present})")
    return path


def has_stage(split: str, stage: str, root: str | Path | None = None) -> bool:
    """Whether the split exists and provides ``<stage>_files.txt``."""
    try:
        resolve_split_file(split, stage, root)
    except ValueError:
        return False
    return True


def parse_split_line(
    text: str, path: str | Path = "<split>", line: int = 0, side_optional: bool = True
) -> SplitEntry:
    """Parse one ``folder frame side`` line; errors start with ``path:line``.

    With ``side_optional`` the side may be omitted (the KITTI depth benchmark's test list has
    ``image 0`` lines); it then defaults to ``"l"``.
    """
    fields = text.split()
    problem = None
    if len(fields) == 2 and not side_optional:
        # In training, a silent "l" would pair frames with the wrong camera and stereo partner.
        problem = "the side is missing (only a test split may leave it out)"
    elif len(fields) not in (2, 3):
        problem = f"got {len(fields)} fields"
    elif not (fields[1].isascii() and fields[1].isdigit()):  # "²".isdigit() is True
        problem = f"frame '{fields[1]}' is not a non-negative integer"
    elif len(fields) == 3 and fields[2] not in SIDES:
        problem = f"side '{fields[2]}' is not 'l' or 'r'"
    if problem:
        raise DataFormatError(
            f"{path}:{line}: expected 'folder frame side' (side l|r), {problem}: {text!r}"
        )
    side = fields[2] if len(fields) == 3 else "l"
    return SplitEntry(fields[0], int(fields[1]), side, line)


def read_split_text(path: str | Path) -> str:
    """A split file's text; a UTF-8 byte-order mark (Windows editors write one) is dropped.

    Raises:
        DataFormatError: not UTF-8 text.
    """
    return read_text_file(Path(path))


def read_split(path: str | Path) -> list[SplitEntry]:
    """All entries of a split file, in file order; empty lines are ignored.

    Only test splits (``test_files*.txt``) may leave out the side of a line.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: a malformed line, as ``path:LINE: expected 'folder frame side' ...``,
            or a file that is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    side_optional = path.name.startswith("test")
    entries = []
    for number, text in enumerate(read_split_text(path).splitlines(), start=1):
        if text.strip():
            entries.append(parse_split_line(text, path, number, side_optional))
    return entries
