"""Colour frames from disk: one loader for training, evaluation and prediction.

Every reader of a colour frame goes through :func:`read_colour`, so a truncated or corrupt
file fails the same way everywhere: a :class:`~mono.data.errors.DataFormatError` that names it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data.errors import DataFormatError

# What PIL raises for a damaged file: a truncated stream (OSError), a broken chunk
# (SyntaxError), bad zlib data, or a header that promises an absurd size.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    zlib.error,
    Image.DecompressionBombError,
)


class ImageDecodeError(DataFormatError):
    """An image file cannot be opened or decoded; the message names the file."""


def image_header(path: str | Path) -> tuple[int, int, str]:
    """``(width, height, PIL mode)`` read from the header only (no pixel is decoded).

    Raises:
        ImageDecodeError: not an image PIL can open.
    """
    try:
        with Image.open(path) as img:
            return img.width, img.height, img.mode
    except DECODE_ERRORS as err:
        raise ImageDecodeError(f"{path} is not a readable image ({_cause(err)})") from None


def read_colour(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour frame, fully decoded.

    Raises:
        ImageDecodeError: the file cannot be opened or decoded (PIL decodes lazily: a truncated
            file fails only here), naming it and the cause.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except DECODE_ERRORS as err:
        raise ImageDecodeError(f"{path} cannot be decoded ({_cause(err)})") from None


def _cause(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"
