"""The error every data reader raises for a malformed input file."""


class DataFormatError(ValueError):
    """A data file (split, calibration, pose, image, ground truth) is empty or malformed.

    Messages name the file and, where there is one, the line or the split line that needs it.
    A missing file is a :class:`FileNotFoundError` instead.
    """
