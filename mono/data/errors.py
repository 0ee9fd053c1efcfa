"""The error every data reader raises for a malformed input file."""

from pathlib import Path


class DataFormatError(ValueError):
    """A data file (split, calibration, pose, image, ground truth) is empty or malformed.

    Messages name the file and, where there is one, the line or the split line that needs it.
    A missing file is a :class:`FileNotFoundError` instead.
    """


def read_text_file(path: Path) -> str:
    """A text file's content (UTF-8; a byte-order mark is dropped).

    Raises:
        DataFormatError: the file is not UTF-8 text, naming it and the first bad byte.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: not a UTF-8 text file (byte {err.start} is 0x{err.object[err.start]:02x})"
        ) from None
