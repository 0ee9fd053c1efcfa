"""Frame ids, parsed once: what a sample holds."""

import pytest

from mono.frame_ids import parse_frame_ids


@pytest.mark.parametrize(
    ("given", "temporal", "offsets", "stereo"),
    [
        (["0", "-1", "1"], ("-1", "1"), (-1, 1), False),
        ([0, "s"], (), (), True),
        (["0", -2, "1", "s"], ("-2", "1"), (-2, 1), True),
    ],
)
def test_frame_ids_say_what_they_hold(given, temporal, offsets, stereo):
    frames = parse_frame_ids(given)
    assert frames == tuple(str(f) for f in given)  # still the stored strings
    assert frames.sources == frames[1:]
    assert (frames.temporal, frames.offsets, frames.stereo) == (temporal, offsets, stereo)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["-1", "0"], r"data.frame_ids=\['-1', '0'\]: the target frame '0' must come first"),
        (["0", "x"], r"data.frame_ids: 'x' is neither an integer offset nor 's'"),
        (["0", "1", "1"], r"data.frame_ids=\['0', '1', '1'\] has duplicates"),
    ],
)
def test_bad_frame_ids_name_the_option(given, message):
    with pytest.raises(ValueError, match=message):
        parse_frame_ids(given, name="data.frame_ids")
