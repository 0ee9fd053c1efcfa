"""Reading trained networks back without Lightning: from a mono checkpoint or Monodepth2 weights.

Every tool (evaluate, export, predict, inspect) goes through :func:`load_networks`, so a
corrupt file, a wrong architecture or a mismatched input size fails the same clear way.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mono.data.calib import MONODEPTH2_BASELINE, STEREO_SCALE_FACTOR, metric_scale
from mono.frame_ids import parse_frame_ids
from mono.nets import MONODEPTH2_DEPTH_RANGE, DepthNet, PoseNet, depth_net_from_options
from mono.nets.intrinsics import learned_K_from_state
from mono.nets.monodepth2_format import (
    ENCODER_META_KEYS,
    load_monodepth2,
    load_state_checked,
)

# The files of a Monodepth2 weights folder.
MONODEPTH2_FILES = ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth")
# Monodepth2 trains every model with this depth range; its weight files do not record it.


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or not a mono checkpoint."""


@dataclass
class LoadedNetworks:
    """Networks and the settings they were trained with.

    Attributes:
        depth: the depth network (eval mode).
        pose: the pose network, or None when the source had none.
        height, width: the input size the networks were trained at.
        min_depth, max_depth: disparity-to-depth range.
        frame_ids: training frame ids (tells mono / stereo / mono+stereo apart).
        metric_scale: metres per unit of predicted depth, or None when the model has no metric
            scale (monocular: evaluate with median scaling); see
            :func:`mono.data.calib.metric_scale`.
        source: the file or folder they came from.
        hparams: every stored hyper-parameter (empty for Monodepth2 weights).
        learned_K: (3, 3) normalised K of a model trained with ``model.learn_intrinsics``, else
            None.
    """

    depth: nn.Module
    pose: nn.Module | None
    height: int
    width: int
    min_depth: float = MONODEPTH2_DEPTH_RANGE[0]
    max_depth: float = MONODEPTH2_DEPTH_RANGE[1]
    frame_ids: list[str] = field(default_factory=lambda: ["0", "-1", "1"])
    metric_scale: float | None = None
    source: str = ""
    hparams: dict = field(default_factory=dict)
    learned_K: np.ndarray | None = None

    @property
    def stereo_trained(self) -> bool:
        """True for stereo and mono+stereo models (Monodepth2's ``use_stereo``)."""
        return parse_frame_ids(self.frame_ids).stereo


def checkpoint_metric_scale(hp: dict, source: str | Path) -> float | None:
    """Metric scale of a checkpoint's depth from its hyper-parameters.

    Checkpoints written before ``model.stereo_baseline`` existed do not say which baseline a
    stereo model was trained with; they keep the rule of that time (the 0.1 m convention),
    with a warning, since the main job trains with the calibrated one.
    """
    frame_ids = [str(f) for f in hp.get("frame_ids", ["0", "-1", "1"])]
    mode = hp.get("training_mode", "self_supervised")
    baseline = hp.get("stereo_baseline")
    if baseline is None:
        baseline = MONODEPTH2_BASELINE
        if mode == "self_supervised" and parse_frame_ids(frame_ids).stereo:
            warnings.warn(
                f"{source} does not record the stereo baseline it was trained with (older than "
                "model.stereo_baseline): assuming Monodepth2's 0.1 m convention, metres = "
                f"{STEREO_SCALE_FACTOR} x depth; if it was trained with data.stereo_baseline "
                "'calib' its depth is already in metres",
                stacklevel=3,
            )
    return metric_scale(frame_ids, baseline, mode)


def monodepth2_settings(meta: dict) -> tuple[float, float, float | None]:
    """``(min_depth, max_depth, metric_scale)`` of a Monodepth2 folder's ``encoder.pth`` metadata.

    Folders written by mono record them; the reference's folders do not, and Monodepth2
    always trains with depths 0.1 .. 100 m and stereo with its 0.1 m baseline convention.
    """
    min_depth = float(meta.get("min_depth", MONODEPTH2_DEPTH_RANGE[0]))
    max_depth = float(meta.get("max_depth", MONODEPTH2_DEPTH_RANGE[1]))
    if "metric_scale" in meta:
        scale = meta["metric_scale"]
        return min_depth, max_depth, None if scale is None else float(scale)
    return min_depth, max_depth, STEREO_SCALE_FACTOR if meta.get("use_stereo") else None


def check_checkpoint_file(path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a complete, intact torch zip archive.

    Reads the whole file once and checks every member's CRC, which also catches damage that
    ``torch.load`` would read through (its zip reader skips the checksums).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        problem = None if bad is None else f"member {bad} fails its CRC check"
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        problem = f"not a complete zip archive: {err}"
    if problem is not None:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({problem}); "
            "use another checkpoint (e.g. last.ckpt or an earlier best-*.ckpt)"
        )


def check_finite(state: dict[str, Any], source: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged run), naming the first bad tensor.

    Args:
        state: name -> tensor (a state dict); non-tensors and integer tensors are skipped.
        source: the file the tensors come from, named in the error.

    Raises:
        CheckpointError: ``<source>: tensor '<name>' holds <n> non-finite values of <size> ...``.
    """
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                bad = value[~finite]
                raise CheckpointError(
                    f"{source}: tensor '{name}' holds {bad.numel()} non-finite values of "
                    f"{value.numel()} (first: {bad[0].item()}); the weights are unusable (a "
                    "diverged run?): use an earlier checkpoint"
                )


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file on the CPU, turning every low-level failure into a clear error.

    The archive's checksums are verified first (:func:`check_checkpoint_file`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    check_checkpoint_file(path)
    try:
        # Our own Lightning checkpoints hold plain Python hyper-parameters next to tensors.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err}); "
            "use another checkpoint (e.g. last.ckpt or an earlier best-*.ckpt)"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a mono/Lightning checkpoint (no 'state_dict')")
    return ckpt


def _sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_networks(source: str | Path, with_pose: bool = True) -> LoadedNetworks:
    """Depth (and pose) networks from a ``.ckpt`` file or a Monodepth2 weights folder."""
    source = Path(source)
    if source.is_dir():
        _check_weight_files(source)
        depth, pose, meta = load_monodepth2(source)
        check_finite(depth.encoder.state_dict(), str(source / "encoder.pth"))
        check_finite(depth.decoder.state_dict(), str(source / "depth.pth"))
        if pose is not None and with_pose:
            if pose.encoder is not None:
                check_finite(pose.encoder.state_dict(), str(source / "pose_encoder.pth"))
            check_finite(pose.head.state_dict(), str(source / "pose.pth"))
        frame_ids = ["0", "-1", "1", "s"] if meta.get("use_stereo") else ["0", "-1", "1"]
        depth.set_meaning(*monodepth2_settings(meta))
        return LoadedNetworks(
            depth=depth.eval(),
            pose=pose.eval() if (pose is not None and with_pose) else None,
            height=int(meta["height"]),
            width=int(meta["width"]),
            frame_ids=frame_ids,
            source=str(source),
            **depth.range_settings(),
        )
    ckpt = read_checkpoint(source)
    hp = dict(ckpt.get("hyper_parameters", {}))
    if "height" not in hp:
        raise CheckpointError(f"{source}: no hyper-parameters stored; not a mono checkpoint")
    check_finite(ckpt["state_dict"], str(source))
    depth = depth_net_from_options(
        hp.get("depth_net", "resnet"),
        hp.get("num_layers", 18),
        hp.get("scales", (0, 1, 2, 3)),
        hp["height"],
        hp["width"],
        min_depth=float(hp.get("min_depth", MONODEPTH2_DEPTH_RANGE[0])),
        max_depth=float(hp.get("max_depth", MONODEPTH2_DEPTH_RANGE[1])),
        metric_scale=checkpoint_metric_scale(hp, source),
    )
    load_state_checked(depth, _sub_state(ckpt["state_dict"], "depth."), f"{source} [depth]")
    pose = None
    pose_state = _sub_state(ckpt["state_dict"], "pose.")
    if with_pose and pose_state:
        pose = PoseNet(
            kind=hp.get("pose_model_type", "separate"),
            num_layers=hp.get("num_layers", 18),
            pretrained=False,
        )
        load_state_checked(pose, pose_state, f"{source} [pose]")
        pose.eval()
    return LoadedNetworks(
        depth=depth.eval(),
        pose=pose,
        height=int(hp["height"]),
        width=int(hp["width"]),
        frame_ids=[str(f) for f in hp.get("frame_ids", ["0", "-1", "1"])],
        source=str(source),
        **depth.range_settings(),
        hparams=hp,
        learned_K=learned_K_from_state(ckpt["state_dict"]),
    )


def _check_weight_files(folder: Path) -> None:
    """Verify the checksums of a weights folder's ``.pth`` files that are zip archives
    (torch >= 1.6 writes those; Monodepth2's own files predate it and have no checksums)."""
    for name in MONODEPTH2_FILES:
        path = folder / name
        if path.is_file() and zipfile.is_zipfile(path):
            check_checkpoint_file(path)


def init_model_from_monodepth2(
    model: nn.Module, folder: str | Path, *, allow_size_change: bool = False
) -> list[str]:
    """Copy Monodepth2 weights into a model's ``depth`` (and ``pose``) networks to fine-tune.

    Args:
        model: an object with ``depth`` (a ResNet :class:`DepthNet`), ``pose`` (PoseNet or
            None) and ``hparams.height`` / ``hparams.width``, e.g. :class:`mono.module.DepthModel`.
        folder: ``encoder.pth`` + ``depth.pth`` [+ ``pose_encoder.pth`` + ``pose.pth``].
        allow_size_change: fine-tune at another resolution than the weights were trained at
            (as Monodepth2's 1024 x 320 models start from 640 x 192 ones).

    Returns:
        The parts loaded, ``["depth"]`` or ``["depth", "pose"]``; a model pose network with no
        pose files keeps its initialisation, and a depth range other than the folder's makes
        the same weights predict other depths (a warning says each).

    Raises:
        FileNotFoundError, ValueError: missing files; the training size differs from the
            model's; or keys / shapes that do not fit (all named).
    """
    folder = Path(folder)
    if not isinstance(model.depth, DepthNet):
        raise ValueError("Monodepth2 weights need model.depth_net='resnet'")
    for name in ("encoder.pth", "depth.pth"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found (a Monodepth2 weights folder)")

    _check_weight_files(folder)

    def read(name: str) -> dict[str, Any]:
        state = torch.load(folder / name, map_location="cpu", weights_only=True)
        check_finite(state, str(folder / name))
        return state

    encoder = read("encoder.pth")
    size = (encoder.get("height"), encoder.get("width"))
    want = (int(model.hparams.height), int(model.hparams.width))
    if size != want and not allow_size_change:
        raise ValueError(
            f"{folder / 'encoder.pth'} was trained at height x width {size[0]} x {size[1]} but "
            f"the model is {want[0]} x {want[1]}; set data.height/data.width to match or allow "
            "a size change explicitly (allow_size_change=True)"
        )
    _warn_if_range_differs(folder, encoder, model.hparams)
    state = {k: v for k, v in encoder.items() if k not in ENCODER_META_KEYS}
    load_state_checked(model.depth.encoder, state, str(folder / "encoder.pth"))
    load_state_checked(model.depth.decoder, read("depth.pth"), str(folder / "depth.pth"))
    loaded = ["depth"]
    pose = getattr(model, "pose", None)
    if pose is not None:
        if not (folder / "pose.pth").is_file():
            warnings.warn(
                f"{folder} has no pose.pth: the pose network keeps its initialisation",
                stacklevel=2,
            )
            return loaded
        if pose.encoder is not None:
            if not (folder / "pose_encoder.pth").is_file():
                raise FileNotFoundError(
                    f"{folder / 'pose_encoder.pth'} not found, but model.pose_model_type is "
                    "'separate'; choose the pose kind the weights were trained with"
                )
            load_state_checked(pose.encoder, read("pose_encoder.pth"), f"{folder}/pose_encoder.pth")
        load_state_checked(pose.head, read("pose.pth"), str(folder / "pose.pth"))
        loaded.append("pose")
    return loaded


def _warn_if_range_differs(folder: Path, encoder: dict, hparams) -> None:
    """Warn when the model maps disparity to depth with another range than the weights did."""
    trained = monodepth2_settings(encoder)[:2]
    wanted = (float(hparams.min_depth), float(hparams.max_depth))
    if trained == wanted:
        return
    recorded = "min_depth" in encoder
    was = (
        f"was trained with depths {trained[0]:g} .. {trained[1]:g} m"
        if recorded
        else f"does not record its depth range, so it is Monodepth2's {trained[0]:g} .. "
        f"{trained[1]:g} m"
    )
    warnings.warn(
        f"{folder} {was}, but model.min_depth/max_depth are {wanted[0]:g} .. {wanted[1]:g} m: "
        "the loaded network predicts other depths until fine-tuning adapts it",
        stacklevel=3,
    )
