"""Your own videos: sequences of frames or video files (``data.dataset: video``).

Layout and frame cache: :mod:`mono.data.video_source`; intrinsics files:
:mod:`mono.data.intrinsics_file`. A sample is a frame of a sequence with its neighbours at the
``frame_ids`` offsets, counted on the sequence's *timeline*: every ``frame_stride``-th frame,
without the near-static frames when ``static_threshold`` is set. Frames are cropped centrally
to the network's aspect (video files already in the cache, image folders when read), so the
batch K is the file's K with the crop's offset, normalised by the crop.

Sequences are split by name: ``split: auto`` holds out ``val_fraction`` of them for validation
(at least one when there are two or more; a random choice seeded by ``seed``); a split
directory instead lists sequence names, one per line, in ``train_files.txt`` and
``val_files.txt``. No sequence is in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mono.data.intrinsics_file import (
    FILE_NAME,
    FORMAT_HINT,
    IntrinsicsFileError,
    IntrinsicsSpec,
    crop_box,
    cropped_intrinsics,
    read_intrinsics_file,
)
from mono.data.sample import Frames, SampleDataset
from mono.data.splits import available_splits, read_split_text, split_directory
from mono.data.video_source import (
    CACHE_NAME,
    Sequence,
    VideoDataError,
    decode_video,
    discover_sequences,
    image_files,
    image_size,
    moving_frames,
)
from mono.frame_ids import parse_frame_ids

AUTO_SPLIT = "auto"
# The K a batch carries when the camera is learned (data.intrinsics='learned'): the network
# warps with the learned camera, so this only fills the field (and never meets the loss).
PLACEHOLDER_HFOV = 60.0


@dataclass
class Timeline:
    """The frames a sequence contributes, as resolved by :meth:`VideoDataset.check_files`.

    Attributes:
        name: the sequence's name.
        files: its frames after the stride and the static-frame filter, in time order.
        K: (3, 3) float32 intrinsics normalised by the cropped frame.
        box: (top, left, height, width) crop applied when reading, None for cached frames
            (cropped when decoded).
    """

    name: str
    files: list[Path]
    K: np.ndarray
    box: tuple[int, int, int, int] | None


def check_video_options(options: Mapping) -> None:
    """Raise a ValueError naming the first ``data.`` option the video layout cannot use."""
    stride, threshold, fraction = (
        options["frame_stride"],
        options["static_threshold"],
        options["val_fraction"],
    )
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"data.frame_stride={stride!r} must be an integer >= 1")
    if threshold is not None and not threshold >= 0:
        raise ValueError(f"data.static_threshold={threshold!r} must be >= 0 (grey levels)")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.val_fraction={fraction!r} must be in [0, 1)")
    if parse_frame_ids(options["frame_ids"], name="data.frame_ids").stereo:
        raise ValueError(
            f"data.frame_ids={list(options['frame_ids'])}: 's' needs a stereo pair, and "
            "data.dataset=video is monocular"
        )
    if options["depth"] not in ("none", "auto"):
        raise ValueError(
            f"data.depth='{options['depth']}': data.dataset=video has no ground truth "
            "(use 'none' or 'auto')"
        )
    for name in ("split", "val_split"):
        split = options.get(name)
        if split in available_splits():
            raise ValueError(
                f"data.{name}='{split}' is a KITTI split; data.dataset=video takes "
                f"'{AUTO_SPLIT}' or a directory whose train_files.txt / val_files.txt list "
                "sequence names"
            )


def _read_names(path: Path, known: list[str]) -> list[str]:
    names = []
    for number, text in enumerate(read_split_text(path).splitlines(), start=1):
        name = text.strip()
        if not name:
            continue
        if name not in known:
            raise ValueError(f"{path}:{number}: unknown sequence '{name}' (known: {known})")
        names.append(name)
    return names


def split_sequences(
    names: list[str], split: str, val_split: str | None, root: Path, fraction: float, seed: int
) -> tuple[list[str], list[str], str]:
    """(train names, val names, where the split comes from) of the sequences ``names``.

    Raises:
        ValueError: an unknown split directory or sequence name, a missing stage file, or a
            sequence listed for both stages.
    """
    if split == AUTO_SPLIT and val_split in (None, AUTO_SPLIT):
        n_val = 0
        if fraction > 0 and len(names) > 1:
            n_val = min(len(names) - 1, max(1, round(fraction * len(names))))
        order = np.random.default_rng(seed).permutation(len(names))
        val = sorted(names[i] for i in order[:n_val])
        where = f"automatic split (data.val_fraction={fraction}, data.seed={seed})"
        return [n for n in names if n not in val], val, where
    files = {}
    stages = (("train", "split", split), ("val", "val_split", val_split or split))
    for stage, option, value in stages:
        try:
            directory = split_directory(value, root)
        except ValueError as error:
            raise ValueError(f"data.{option}: {error} (or '{AUTO_SPLIT}')") from None
        files[stage] = directory / f"{stage}_files.txt"
        if not files[stage].is_file():
            raise ValueError(f"data.{option}: {files[stage]} not found")
    train, val = (_read_names(files[s], names) for s in ("train", "val"))
    both = sorted(set(train) & set(val))
    if both:
        raise ValueError(f"sequence(s) {both} are in both {files['train']} and {files['val']}")
    return train, val, f"{files['train']} / {files['val']}"


class VideoDataset(SampleDataset):
    """Samples of sequences of frames or video files (see the module docstring).

    Args:
        root: ``data.root``; its ``intrinsics.txt`` serves sequences without their own.
        sequences: the sequences of this stage.
        frame_ids: ``"0"`` first, then integer offsets on the timeline.
        train: draw flips and colour jitter.
        seed: augmentation seed.
        height, width: network input size: frames are cropped to its aspect (and video files
            decoded at this size).
        frame_stride: keep every N-th frame.
        static_threshold: drop near-static frames (see
            :func:`mono.data.video_source.moving_frames`); None keeps all.
        cache_dir: frame cache of video files; None = ``<root>/.frame_cache``.
        limit: use only the first N samples.
        split_file: where the split comes from, named in messages.
        learned_intrinsics: sequences without an intrinsics file get a placeholder K
            (:data:`PLACEHOLDER_HFOV`), for a model that learns its camera.
    """

    def __init__(
        self,
        root: str | Path,
        sequences: list[Sequence],
        frame_ids=("0", "-1", "1"),
        train: bool = False,
        seed: int = 0,
        height: int = 192,
        width: int = 640,
        frame_stride: int = 1,
        static_threshold: float | None = None,
        cache_dir: str | Path | None = None,
        limit: int | None = None,
        split_file: str = "",
        learned_intrinsics: bool = False,
    ) -> None:
        super().__init__(tuple(frame_ids), train, seed)
        self.root = Path(root)
        self.sequences = list(sequences)
        self.size = (height, width)
        self.frame_stride = frame_stride
        self.static_threshold = static_threshold
        base = self.root.parent if self.root.is_file() else self.root
        self.cache_dir = Path(cache_dir) if cache_dir else base / CACHE_NAME
        self.root_intrinsics = base / FILE_NAME
        self.limit = limit
        self.split_file = split_file
        self.learned_intrinsics = learned_intrinsics
        self.offsets = [int(f) for f in self.frame_ids]
        self.timelines: list[Timeline] = []
        self.samples: list[tuple[int, int]] = []  # (timeline, position of the target)
        self.removed_static: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def window(self) -> int:
        """Frames one sample spans on the timeline (3 for offsets -1, 0, 1)."""
        return max(self.offsets) - min(self.offsets) + 1

    def _intrinsics(self, sequence: Sequence):
        for path in (sequence.intrinsics_file, self.root_intrinsics):
            if path.is_file():
                return read_intrinsics_file(path)
        if self.learned_intrinsics:
            return IntrinsicsSpec("hfov", (PLACEHOLDER_HFOV,), Path("<learned camera>"))
        raise IntrinsicsFileError(
            f"no intrinsics for sequence '{sequence.name}': write {sequence.intrinsics_file} "
            f"or {self.root_intrinsics} with {FORMAT_HINT}"
        )

    def _frames(self, sequence: Sequence) -> tuple[list[Path], tuple[int, int], tuple | None]:
        """(frame files, size of the frames as stored (h, w), crop box or None when cached)."""
        if sequence.is_video:
            files, meta = decode_video(sequence.path, self.cache_dir, *self.size)
            return files, tuple(meta["native_size"]), tuple(meta["crop"])
        files = image_files(sequence.path)
        sizes = {image_size(p) for p in files}
        if len(sizes) > 1:
            raise VideoDataError(f"{sequence.path}: the images differ in size: {sorted(sizes)}")
        return files, sizes.pop(), None

    def check_files(self) -> None:
        """Decode videos into the cache, read intrinsics, apply stride and static filter.

        Prints one line: sequences, frames, near-static frames removed, samples.

        Raises:
            VideoDataError: an unreadable or empty video, a sequence shorter than the frame
                window, or no sample left after the stride (the option is named).
            IntrinsicsFileError: a sequence without intrinsics or with an invalid file.
        """
        self.timelines, self.samples, self.removed_static = [], [], {}
        low, total = -min(self.offsets), 0
        for sequence in self.sequences:
            spec = self._intrinsics(sequence)
            files, native, box = self._frames(sequence)
            if len(files) < self.window:
                raise VideoDataError(
                    f"sequence '{sequence.name}' ({sequence.path}) has {len(files)} frame(s); "
                    f"data.frame_ids {list(self.frame_ids)} span {self.window}"
                )
            crop = box if box is not None else crop_box(*native, *self.size)
            K = cropped_intrinsics(spec.normalised(*native), native, crop)
            strided = files[:: self.frame_stride]
            if self.static_threshold is not None:
                kept = moving_frames(strided, self.static_threshold)
                self.removed_static[sequence.name] = len(strided) - len(kept)
                strided = [strided[i] for i in kept]
            total += len(files)
            index = len(self.timelines)
            self.timelines.append(Timeline(sequence.name, strided, K, None if box else crop))
            self.samples += [(index, p) for p in range(low, len(strided) - max(self.offsets))]
        if self.sequences and not self.samples:
            longest = max(len(t.files) for t in self.timelines)
            raise VideoDataError(
                f"data.frame_stride={self.frame_stride} leaves no samples: the longest "
                f"sequence keeps {longest} frame(s) (static frames removed: "
                f"{sum(self.removed_static.values())}) and data.frame_ids "
                f"{list(self.frame_ids)} span {self.window}"
            )
        if self.limit is not None:
            self.samples = self.samples[: self.limit]
        removed = sum(self.removed_static.values())
        print(
            f"video: {len(self.sequences)} sequence(s) from {self.split_file}: {total} frames, "
            f"stride {self.frame_stride}, {removed} near-static frame(s) removed"
            + (f" {self.removed_static}" if removed else "")
            + f", {len(self.samples)} samples",
            flush=True,
        )

    def read(self, index: int) -> Frames:
        """The frames of one sample (cropped), with the sequence's K; no stereo, no depth."""
        timeline, position = self.samples[index]
        t = self.timelines[timeline]
        images = []
        for offset in self.offsets:
            path = t.files[position + offset]
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB"))
            if t.box is not None:
                top, left, h, w = t.box
                image = image[top : top + h, left : left + w]
            images.append(image)
        if len({i.shape for i in images}) > 1:
            raise VideoDataError(f"frames of sample {index} of '{t.name}' differ in size")
        return Frames(np.stack(images), t.K)


def build_video_dataset(options: Mapping, root: Path, stage: str) -> VideoDataset:
    """The unchecked :class:`VideoDataset` of a stage from the DataModule's options.

    Raises:
        ValueError: the ``test`` stage (videos have no ground truth to score).
        VideoDataError: ``root`` holds no sequence.
    """
    if stage == "test":
        raise ValueError(
            "data.dataset=video has no test stage: its sequences have no ground-truth depth "
            "(use `mono predict` to look at the depth of a video)"
        )
    sequences = discover_sequences(root)
    names = [s.name for s in sequences]
    train, val, where = split_sequences(
        names,
        options["split"],
        options.get("val_split"),
        root,
        options["val_fraction"],
        options["seed"],
    )
    chosen = set(train if stage == "train" else val)
    return VideoDataset(
        root,
        [s for s in sequences if s.name in chosen],
        frame_ids=options["frame_ids"],
        train=stage == "train",
        seed=options["seed"],
        height=options["height"],
        width=options["width"],
        frame_stride=options["frame_stride"],
        static_threshold=options["static_threshold"],
        cache_dir=options.get("cache_dir"),
        limit=options.get("limit_train_samples") if stage == "train" else None,
        split_file=f"{stage} of {where}",
        learned_intrinsics=options.get("intrinsics") == "learned",
    )
