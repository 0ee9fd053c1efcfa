"""Colour frames from disk: one loader for training, evaluation and prediction.

Every reader of a colour frame goes through :func:`read_colour`, so a truncated or corrupt
file fails the same way everywhere: a :class:`~mono.data.errors.DataFormatError` that names it.
"""

from __future__ import annotations

import warnings
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

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
GRAYSCALE_MODES = {"1": "1-bit", "L": "8-bit", "LA": "8-bit"} | dict.fromkeys(
    SIXTEEN_BIT_MODES, "16-bit"
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


class GrayscaleNotice:
    """Warns about the first grayscale frame of a dataset (or run) only.

    Args:
        scope: what the frames belong to, named in the warning (e.g. a split file).
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.warned = False

    def __call__(self, path: str | Path, mode: str) -> None:
        if self.warned:
            return
        self.warned = True
        warnings.warn(
            f"{path} is a {GRAYSCALE_MODES[mode]} grayscale image: its gray is copied into R, G "
            f"and B, while the networks expect colour; further grayscale frames of {self.scope} "
            "are not reported",
            stacklevel=3,
        )


def to_rgb(img: Image.Image, path: str | Path) -> Image.Image:
    """8-bit RGB of a decoded image; 16-bit grayscale is scaled to 8 bits (/ 257).

    PIL's own ``convert("RGB")`` clips 16-bit values at 255, which turns a 16-bit grayscale
    frame all white.

    Raises:
        ImageDecodeError: 32-bit integer or floating-point pixels, which have no colour range.
    """
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.float64)
        gray = np.round(values / (65535 / 255)).astype(np.uint8)  # 65535 -> 255 exactly
        return Image.fromarray(gray).convert("RGB")
    if img.mode in ("I", "F"):
        kind = "32-bit integer" if img.mode == "I" else "floating-point"
        raise ImageDecodeError(
            f"{path} holds {kind} pixels (PIL mode {img.mode}), not a colour frame; save frames "
            "as 8-bit RGB (16-bit grayscale is scaled by 1/257)"
        )
    return img.convert("RGB")


def read_colour(path: str | Path, grayscale: GrayscaleNotice | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour frame, fully decoded (see :func:`to_rgb`).

    Args:
        path: the image file.
        grayscale: told about grayscale frames (None: accepted silently).

    Raises:
        ImageDecodeError: the file cannot be opened or decoded (PIL decodes lazily: a truncated
            file fails only here), or has no colour range; the file is named.
    """
    return np.asarray(read_colour_image(path, grayscale))


def read_colour_image(path: str | Path, grayscale: GrayscaleNotice | None = None) -> Image.Image:
    """:func:`read_colour` as a PIL RGB image."""
    try:
        with Image.open(path) as img:
            img.load()
            if grayscale is not None and img.mode in GRAYSCALE_MODES:
                grayscale(path, img.mode)
            return to_rgb(img, path)
    except ImageDecodeError:
        raise
    except DECODE_ERRORS as err:
        raise ImageDecodeError(f"{path} cannot be decoded ({_cause(err)})") from None


def _cause(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"
