import pytest

from mono.data.splits import (
    SPLITS_DIR,
    SplitEntry,
    available_splits,
    has_stage,
    read_split,
    resolve_split_file,
)


def test_shipped_splits_are_listed():
    names = available_splits()
    for name in ("eigen_zhou", "eigen_full", "eigen", "eigen_benchmark", "benchmark", "odom"):
        assert name in names


def test_resolve_shipped_split_and_read_it():
    path = resolve_split_file("eigen_zhou", "train")
    assert path == SPLITS_DIR / "eigen_zhou" / "train_files.txt"
    entries = read_split(path)
    assert len(entries) == 39810  # Zhou et al.'s list, as shipped by Monodepth2
    assert entries[0] == SplitEntry("2011_09_26/2011_09_26_drive_0022_sync", 473, "r", 1)


def test_zero_padded_frames_parse_as_integers():
    entries = read_split(resolve_split_file("eigen", "test"))
    assert len(entries) == 697
    assert entries[0] == SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 69, "l", 1)


def test_side_defaults_to_left_when_omitted():
    # The depth benchmark's test list is "image 0" lines.
    entries = read_split(resolve_split_file("benchmark", "test"))
    assert entries[1] == SplitEntry("image", 1, "l", 2)


def test_unknown_split_lists_the_choices():
    with pytest.raises(ValueError, match="unknown split 'eigen_zho'") as info:
        resolve_split_file("eigen_zho", "train")
    assert "eigen_zhou" in str(info.value) and "benchmark" in str(info.value)


def test_missing_stage_file_is_named():
    with pytest.raises(ValueError, match="train_files.txt"):
        resolve_split_file("eigen", "train")
    assert not has_stage("eigen", "train")
    assert has_stage("eigen", "test")


def test_unknown_stage():
    with pytest.raises(ValueError, match="unknown stage 'training'"):
        resolve_split_file("eigen_zhou", "training")


def test_directory_split_and_lookup_under_root(tmp_path):
    split_dir = tmp_path / "data" / "splits" / "mine"
    split_dir.mkdir(parents=True)
    (split_dir / "val_files.txt").write_text("a/b 3 r\n")
    assert resolve_split_file(str(split_dir), "val") == split_dir / "val_files.txt"
    # A relative directory that does not exist from the cwd is looked up under the root.
    assert resolve_split_file("splits/mine", "val", root=tmp_path / "data") == (
        tmp_path / "data" / "splits" / "mine" / "val_files.txt"
    )


def test_empty_lines_are_ignored_and_line_numbers_kept(tmp_path):
    path = tmp_path / "train_files.txt"
    path.write_text("d/x 1 l\n\n   \nd/x 0002 r\n")
    assert read_split(path) == [SplitEntry("d/x", 1, "l", 1), SplitEntry("d/x", 2, "r", 4)]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("d/x", "got 1 fields"),
        ("d/x 1 l extra", "got 4 fields"),
        ("d/x one l", "frame 'one' is not a non-negative integer"),
        ("d/x -1 l", "frame '-1' is not a non-negative integer"),
        ("d/x 1 left", "side 'left' is not 'l' or 'r'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "train_files.txt"
    path.write_text(f"d/x 1 l\n{line}\n")
    with pytest.raises(ValueError) as info:
        read_split(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: expected 'folder frame side'")
    assert problem in message


def test_missing_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_split(tmp_path / "nope.txt")
