"""Progress bars for the steps that take more than a few seconds (rendering, prediction).

A tqdm bar on stderr, shown when stderr is a terminal; ``MONO_PROGRESS=1`` shows it anyway
(logs, CI), ``MONO_PROGRESS=0`` hides it. Imports only tqdm, so any layer may use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress_enabled() -> bool:
    """``MONO_PROGRESS`` (1 or 0) when set, else whether stderr is a terminal."""
    setting = os.environ.get("MONO_PROGRESS", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    return sys.stderr.isatty()


def progress_bar(total: int, desc: str, unit: str = "it", iterable: Iterable | None = None) -> tqdm:
    """A bar counting to ``total``: iterate over it (with ``iterable``), or advance it with
    ``.update(n)`` and ``.close()`` it.

    Off the terminal (``MONO_PROGRESS=1`` in a log) it redraws at most every few seconds, so
    a log gets a line now and then rather than one per item.
    """
    interactive = sys.stderr.isatty()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not progress_enabled(),
        mininterval=0.1 if interactive else 5.0,
        dynamic_ncols=interactive,
        leave=True,
    )
