"""Ground truth for inspecting the loss on the synthetic drives (:mod:`mono.data.synth`).

Fetch any (drive, frame) as a training batch (:func:`synthetic_batch`), e.g. the stationary
stretch or the car that drives with the camera, re-render its true depth, object ids and
motion (:func:`synthetic_truth`), and swap a model's networks for that truth
(:func:`truth_model`) to see with :func:`mono.inspect.inspect_batch` what a perfect model is
scored on.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mono.data.kitti import KittiRawDataset
from mono.data.sample import collate
from mono.data.splits import SplitEntry
from mono.frame_ids import STEREO, parse_frame_ids
from mono.geometry import depth_to_disp
from mono.module import DepthModel
from mono.nets import DepthPredictor
from mono.types import Batch, DepthOutput, Views


@dataclass(frozen=True)
class SyntheticDrive:
    """One drive of a synthetic dataset, as the dataset's ``synthetic.json`` describes it.

    Attributes:
        index: position in the dataset (train drives first, then val, then test).
        folder: ``<date>/<date>_drive_NNNN_sync``, as split files name it.
        split: "train", "val" or "test"; frames: number of frames.
        stationary: first and last frame of the stretch where the rig stands still.
        moving_car: the car that drives rigidly with the rig, static in the image
            (``distance_m``, ``size_m``, ``object_id``).
    """

    index: int
    folder: str
    split: str
    frames: int
    stationary: tuple[int, int]
    moving_car: dict

    def still_frame(self) -> int:
        """A target whose previous and next frames were taken from the same place."""
        a, b = self.stationary
        return (a + b) // 2

    def moving_frame(self) -> int:
        """A target in the middle of a driving stretch (neither neighbour stands still)."""
        a, b = self.stationary
        frames = [t for t in range(2, self.frames - 2) if t + 1 < a or t - 1 > b]
        return frames[len(frames) // 2]


def _metadata(root: str | Path) -> dict:
    path = Path(root) / "synthetic.json"
    meta = json.loads(path.read_text()) if path.is_file() else {}
    if not meta.get("complete"):
        raise FileNotFoundError(
            f"{path}: no complete synthetic dataset here; write one with "
            f"`python -m mono.data.synth --out {root} --preset tiny`"
        )
    return meta


def synthetic_drives(root: str | Path) -> list[SyntheticDrive]:
    """The drives of the synthetic dataset at ``root``, in dataset order."""
    return [
        SyntheticDrive(
            i, d["folder"], d["split"], d["frames"], tuple(d["stationary"]), d["moving_car"]
        )
        for i, d in enumerate(_metadata(root)["drives"])
    ]


def _drive(root, drive: SyntheticDrive | int | str) -> SyntheticDrive:
    if isinstance(drive, SyntheticDrive):
        return drive
    drives = synthetic_drives(root)
    for d in drives:
        if drive in (d.index, d.folder, Path(d.folder).name):
            return d
    names = [d.folder for d in drives]
    raise ValueError(f"no drive {drive!r} in the synthetic dataset at {root}; it has {names}")


def _entries(root, samples, frame_ids, side) -> list[tuple[SyntheticDrive, SplitEntry]]:
    if side not in ("l", "r"):
        raise ValueError(f"side='{side}': choose 'l' (camera 2) or 'r' (camera 3)")
    out = []
    offsets = list(parse_frame_ids(frame_ids).offsets)
    for drive, frame in samples:
        d = _drive(root, drive)
        if not all(0 <= frame + o < d.frames for o in offsets):
            raise ValueError(
                f"{d.folder}: target frame {frame} with frame_ids {list(frame_ids)} reaches "
                f"outside the drive's frames 0..{d.frames - 1}"
            )
        out.append((d, SplitEntry(d.folder, int(frame), side)))
    return out


def synthetic_batch(
    root: str | Path,
    samples: list[tuple[SyntheticDrive | int | str, int]],
    frame_ids=("0", "-1", "1"),
    side: str = "l",
    intrinsics: str = "calib",
) -> Batch:
    """A batch of chosen (drive, target frame) samples, read as training reads them.

    Goes through :class:`mono.data.kitti.KittiRawDataset` (no flip, no jitter) and
    :func:`mono.data.kitti.collate`, with ground truth (dense for camera 2, else LiDAR).

    Args:
        root: the synthetic dataset's root.
        samples: (drive, frame) pairs; a drive is a :class:`SyntheticDrive`, its index or its
            folder name.
        frame_ids: the model's frame ids (``model.frame_ids``).
        side: "l" (camera 2) or "r" (camera 3) as the target camera.
        intrinsics: "calib" (as ``configs/synthetic.yaml``) or "monodepth2".
    """
    frame_ids = parse_frame_ids(frame_ids)
    entries = [e for _, e in _entries(root, samples, frame_ids, side)]
    dataset = KittiRawDataset(root, entries, frame_ids, intrinsics=intrinsics, depth="auto")
    dataset.check_files()
    return collate([dataset[i] for i in range(len(dataset))])


@dataclass
class SyntheticTruth:
    """Ground truth of a :func:`synthetic_batch` at the images' native size.

    Attributes:
        image: (B, 3, H, W) uint8 target as rendered (the same bytes as on disk).
        depth: (B, 1, H, W) float32 camera z in metres, 0 for sky.
        object_id: (B, 1, H, W) uint8 ids of :mod:`mono.data.synth` (SKY .. MOVING_CAR).
        T_src_tgt: (B, S, 4, 4) float32 true motion into each source camera (metric: the
            stereo partner at the real 0.54 m baseline).
    """

    image: Tensor
    depth: Tensor
    object_id: Tensor
    T_src_tgt: Tensor

    def region(self, object_id: int, size: tuple[int, int] | None = None) -> Tensor:
        """(B, 1, h, w) bool pixels of one object, resized (nearest) to ``size``."""
        mask = (self.object_id == object_id).float()
        if size is not None:
            mask = F.interpolate(mask, size=size, mode="nearest")
        return mask > 0.5


@functools.lru_cache(maxsize=4)
def _drive_specs(meta_text: str):
    from mono.data.synth import PRESETS, make_drives  # heavy, and only needed here

    params = json.loads(meta_text)["params"]
    preset = params["preset"]
    return make_drives(params["seed"], preset, **{k: params[k] for k in PRESETS[preset]})


def synthetic_truth(
    root: str | Path, samples: list[tuple], frame_ids=("0", "-1", "1"), side: str = "l"
) -> SyntheticTruth:
    """Ground truth of the samples of :func:`synthetic_batch` (same arguments), re-rendered."""
    from mono.data.synth import render_frame

    frame_ids = parse_frame_ids(frame_ids)
    specs = _drive_specs(json.dumps(_metadata(root), sort_keys=True))
    camera = 2 if side == "l" else 3
    images, depths, ids, motions = [], [], [], []
    for drive, entry in _entries(root, samples, frame_ids, side):
        spec, t = specs[drive.index], entry.frame
        if spec.relpath != drive.folder:
            raise ValueError(f"{root}: synthetic.json does not match its parameters")
        rendered = render_frame(spec, t, camera)
        images.append(torch.from_numpy(rendered.image).permute(2, 0, 1))
        depths.append(torch.from_numpy(rendered.depth)[None])
        ids.append(torch.from_numpy(rendered.object_id)[None])
        sources = [(t, 5 - camera) if f == STEREO else (t + int(f), camera) for f in frame_ids[1:]]
        motions.append(
            [np.linalg.inv(spec.T_world_cam(*src)) @ rendered.T_world_cam for src in sources]
        )
    return SyntheticTruth(
        image=torch.stack(images),
        depth=torch.stack(depths),
        object_id=torch.stack(ids),
        T_src_tgt=torch.from_numpy(np.array(motions, dtype=np.float32)),
    )


class _FixedDepth(DepthPredictor):
    """Stands in for the depth network: returns the same disparities for any input."""

    def __init__(self, disps: list[Tensor], min_depth: float, max_depth: float) -> None:
        super().__init__(min_depth, max_depth)
        self.n = len(disps)
        for s, disp in enumerate(disps):
            self.register_buffer(f"disp{s}", disp)

    def forward(self, image: Tensor) -> DepthOutput:
        disps = [getattr(self, f"disp{s}") for s in range(self.n)]
        if image.shape[0] != disps[0].shape[0]:
            raise ValueError(
                f"truth_model: built for a batch of {disps[0].shape[0]}, got {image.shape[0]}"
            )
        return DepthOutput(disps=disps)


class _TruthModel(DepthModel):
    """A DepthModel whose pose 'prediction' is the true motion (see :func:`truth_model`)."""

    def predict_poses(self, views: Views, per_frame_feats=None) -> Tensor:
        return self.T_true


def truth_model(model: DepthModel, truth: SyntheticTruth) -> DepthModel:
    """A model scored by ``model``'s loss that 'predicts' the true depth and motion.

    For the batch ``truth`` belongs to only: its depth network returns the true disparity
    (sky at ``max_depth``) at every decoder scale, resized to the model's input size, and its
    pose network the true ``T_src_tgt``. Pass it to :func:`inspect_batch` to see what a
    perfect model is scored on, e.g. which pixels even the truth cannot explain. Replace
    ``truth.T_src_tgt`` to ask what-if questions (a driving motion on a stationary pair).
    Predictive masks are not reproduced.
    """
    hp = model.hparams
    if truth.T_src_tgt.shape[1] != len(model.source_ids):
        raise ValueError(
            f"truth_model: truth has {truth.T_src_tgt.shape[1]} sources, the model's "
            f"frame_ids {model.frame_ids} have {len(model.source_ids)}"
        )
    oracle = _TruthModel(
        height=hp.height, width=hp.width, frame_ids=model.frame_ids, num_layers=18,
        pretrained=False, scales=hp.scales, min_depth=hp.min_depth, max_depth=hp.max_depth,
    )  # fmt: skip
    oracle.objective = dataclasses.replace(model.objective, predictive_mask=False)
    depth = truth.depth.float()
    depth = torch.where(depth > 0, depth, torch.full_like(depth, hp.max_depth))
    disp = depth_to_disp(depth.clamp(hp.min_depth, hp.max_depth), hp.min_depth, hp.max_depth)
    sizes = [(hp.height // 2**s, hp.width // 2**s) for s in range(len(hp.scales))]
    oracle.depth = _FixedDepth(
        [F.interpolate(disp, size=z, mode="bilinear", antialias=True) for z in sizes],
        hp.min_depth,
        hp.max_depth,
    )
    oracle.pose = None
    oracle.register_buffer("T_true", truth.T_src_tgt.float())
    device = model.device
    return oracle.to(device).eval()
