"""Frame ids, parsed once: which frames a sample holds and what each one is.

``"0"`` is the target, an integer string such as ``"-1"`` or ``"1"`` a temporal neighbour at
that offset, ``"s"`` the stereo partner (Monodepth2's convention: ``["0", "-1", "1"]``
monocular, ``["0", "s"]`` stereo, ``["0", "-1", "1", "s"]`` mono+stereo). No torch here.
"""

from __future__ import annotations

STEREO = "s"


class FrameIds(tuple):
    """Validated frame ids (a tuple of strings, target first) that say what they hold."""

    @property
    def sources(self) -> tuple[str, ...]:
        """Every frame but the target, in order."""
        return tuple(self[1:])

    @property
    def temporal(self) -> tuple[str, ...]:
        """The temporal sources (the ones a pose network relates to the target)."""
        return tuple(f for f in self[1:] if f != STEREO)

    @property
    def offsets(self) -> tuple[int, ...]:
        """The temporal sources' frame offsets from the target, as integers."""
        return tuple(int(f) for f in self.temporal)

    @property
    def stereo(self) -> bool:
        """Whether the stereo partner is a source."""
        return STEREO in self


class FrameId(str):
    """Type of one frame id in option signatures: ``"0"``, an offset such as ``"-1"``, or ``"s"``.

    Values are plain strings; the class only names the type, so that the command line
    (:mod:`mono.cli`) can parse it with :func:`frame_id`, which also accepts integers.
    """


def frame_id(value: int | str) -> str:
    """One frame id in its stored form: ``0`` -> ``"0"``, ``-1`` or ``"-1"`` -> ``"-1"``, ``"s"``.

    Raises:
        ValueError: for anything else, naming the value.
    """
    if value == STEREO:
        return STEREO
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return str(int(value))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is neither an integer offset nor 's'")


def parse_frame_ids(frame_ids, name: str = "frame_ids") -> FrameIds:
    """Validate frame ids: ``"0"`` first, then distinct integer offsets and/or ``"s"``.

    ``name`` is the option named in errors (e.g. ``data.frame_ids``).
    """
    ids = tuple(str(f) for f in frame_ids)
    if not ids or ids[0] != "0":
        raise ValueError(f"{name}={list(ids)}: the target frame '0' must come first")
    for f in ids:
        if f != STEREO:
            try:
                int(f)
            except ValueError:
                raise ValueError(f"{name}: '{f}' is neither an integer offset nor 's'") from None
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}={list(ids)} has duplicates")
    return FrameIds(ids)
