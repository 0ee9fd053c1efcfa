"""Output files of the tools: checked before the work, and named when writing them fails.

A tool that predicts for minutes and then finds its output folder read-only (or a file where
the folder should be) wastes the run; one that fails on a full disk with a bare
``OSError: [Errno 28] No space left on device`` does not say which file. Tools call
:func:`check_writable_folder` / :func:`check_writable_file` first and write inside
:func:`writing`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(OSError):
    """An output file or folder cannot be written; the message names it and the cause."""


def _cause(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def check_writable_folder(
    folder: str | Path, what: str = "output folder", create: bool = True
) -> Path:
    """Check that files can be written into ``folder``: create it (with parents) and a file in
    it; with ``create=False`` a missing folder is only checked to be creatable (its nearest
    existing ancestor is a writable folder) and nothing is written.

    Raises:
        OutputError: ``<what> <folder> is not writable (<cause>)``.
    """
    folder = Path(folder)
    if not create and not folder.exists():
        ancestor = next(p for p in folder.absolute().parents if p.exists())
        if not ancestor.is_dir():
            raise OutputError(f"{what} {folder} cannot be created: {ancestor} is a file")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(
                f"{what} {folder} cannot be created in {ancestor} (permission denied)"
            )
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mono-write-check-"):
            pass
    except OSError as err:
        raise OutputError(f"{what} {folder} is not writable ({_cause(err)})") from None
    return folder


def check_writable_file(path: str | Path, what: str = "output file") -> Path:
    """Check that ``path`` can be written: its folder is writable and it is not a folder.

    Raises:
        OutputError: naming ``what`` and the path.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    check_writable_folder(path.parent, f"{what} {path}: its folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path} is not writable (permission denied)")
    return path


@contextmanager
def writing(
    path: str | Path, what: str = "output file", errors: tuple[type[Exception], ...] = (OSError,)
) -> Iterator[None]:
    """Turn ``errors`` raised inside the block into an :class:`OutputError` naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except errors as err:
        raise OutputError(f"could not write {what} {path} ({_cause(err)})") from None
