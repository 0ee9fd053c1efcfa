"""Convert networks to and from Monodepth2's weight files (nianticlabs/monodepth2).

A Monodepth2 weights folder holds ``encoder.pth`` (the depth ResNet's state dict plus the
entries ``height``, ``width`` and ``use_stereo``), ``depth.pth`` (the decoder), and for the
default ``separate_resnet`` pose model ``pose_encoder.pth`` and ``pose.pth`` (for the
``shared`` and ``posecnn`` models only ``pose.pth``). :mod:`mono.nets` names its parameters so
these dicts are plain ``state_dict()`` copies; loading checks every key and shape and fails
with a message naming the file, never silently ignoring what does not fit.

Monodepth2 trains every model with depths 0.1 .. 100 m, so its files do not say so. mono
writes a network's own ``min_depth``, ``max_depth`` and ``metric_scale``
(:data:`MONO_SETTINGS`) into ``encoder.pth`` as well; Monodepth2's loaders keep only the
entries its encoder has, so they ignore them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mono.nets.depth_net import DepthNet
from mono.nets.pose import PoseNet
from mono.nets.resnet_encoder import resnet_out_channels

MONO_SETTINGS = ("min_depth", "max_depth", "metric_scale")
ENCODER_META_KEYS = ("height", "width", "use_stereo", *MONO_SETTINGS)

# (blocks per stage, bottleneck) -> ResNet depth, from torchvision's model definitions.
_RESNET_SIGNATURES = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
_MAX_LISTED = 8


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return f"[{shown}{more}]"


def load_state_checked(module: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """``module.load_state_dict(state)`` with one error listing every mismatch.

    BatchNorm ``num_batches_tracked`` counters missing from the file keep the module's value.

    Raises:
        ValueError: ``"<source>: missing keys [...]; unexpected keys [...]; shape mismatches
            [...]"`` when the state does not fit the module exactly.
    """
    own = module.state_dict()
    state = dict(state)
    for key in own.keys() - state.keys():
        # A BatchNorm step counter, absent from files written by older PyTorch; not a weight.
        if key.endswith("num_batches_tracked"):
            state[key] = own[key]
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    mismatched = sorted(
        f"{k} (file {tuple(state[k].shape)} vs network {tuple(own[k].shape)})"
        for k in own.keys() & state.keys()
        if not isinstance(state[k], Tensor) or state[k].shape != own[k].shape
    )
    problems = [
        f"{label} {_listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            f"{source}: " + "; ".join(problems) + " (is num_layers / the pose kind right?)"
        )
    module.load_state_dict(state, strict=True)


def infer_num_layers(encoder_dict: Mapping[str, Any], source: str = "encoder.pth") -> int:
    """ResNet depth (18 .. 152) of a Monodepth2 encoder state dict, from its block layout."""
    blocks = []
    for stage in range(1, 5):
        pattern = re.compile(rf"^encoder\.layer{stage}\.(\d+)\.")
        indices = {int(m.group(1)) for k in encoder_dict if (m := pattern.match(k))}
        blocks.append(len(indices))
    bottleneck = "encoder.layer1.0.conv3.weight" in encoder_dict
    signature = (tuple(blocks), bottleneck)
    if signature not in _RESNET_SIGNATURES:
        raise ValueError(
            f"{source}: cannot infer the ResNet depth from blocks per stage {tuple(blocks)} "
            f"(bottleneck={bottleneck}); is this a Monodepth2 encoder? pass num_layers explicitly"
        )
    return _RESNET_SIGNATURES[signature]


def _clone(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def depth_net_to_monodepth2(
    net: DepthNet,
    height: int,
    width: int,
    use_stereo: bool = False,
    settings: Mapping[str, float | None] | None = None,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(encoder.pth, depth.pth)`` contents for ``net`` trained at ``height`` x ``width``.

    Args:
        settings: what Monodepth2 does not store: ``min_depth`` and ``max_depth`` (m) of the
            disparity-to-depth mapping and ``metric_scale`` (metres per unit of depth, None
            for a monocular model). None writes a folder exactly like the reference's.
    """
    encoder_dict: dict[str, Any] = _clone(net.encoder)
    encoder_dict.update(height=int(height), width=int(width), use_stereo=bool(use_stereo))
    if settings is not None:
        unknown = sorted(set(settings) - set(MONO_SETTINGS))
        if unknown:
            raise ValueError(f"unknown Monodepth2 settings {unknown}; expected {MONO_SETTINGS}")
        encoder_dict.update({k: None if v is None else float(v) for k, v in settings.items()})
    return encoder_dict, _clone(net.decoder)


def depth_net_from_monodepth2(
    encoder_dict: Mapping[str, Any],
    depth_dict: Mapping[str, Tensor],
    num_layers: int | None = None,
) -> DepthNet:
    """Build a :class:`DepthNet` from Monodepth2's ``encoder.pth`` and ``depth.pth`` contents.

    Args:
        encoder_dict: encoder state dict; the :data:`ENCODER_META_KEYS` entries are ignored.
        depth_dict: decoder state dict; the number of output scales is read from it.
        num_layers: ResNet depth; inferred from ``encoder_dict`` when None.

    Raises:
        ValueError: naming the file and its missing/unexpected keys or mismatched shapes.
    """
    encoder_state = {k: v for k, v in encoder_dict.items() if k not in ENCODER_META_KEYS}
    if num_layers is None:
        num_layers = infer_num_layers(encoder_state)
    heads = [k for k in depth_dict if re.fullmatch(r"decoder\.\d+\.conv\.weight", k)]
    if not heads:
        raise ValueError("depth.pth: no disparity heads (decoder.<i>.conv.weight) found")
    net = DepthNet(num_layers=num_layers, pretrained=False, scales=tuple(range(len(heads))))
    load_state_checked(net.encoder, encoder_state, "encoder.pth")
    load_state_checked(net.decoder, depth_dict, "depth.pth")
    return net


def pose_net_to_monodepth2(
    pose_net: PoseNet,
) -> tuple[dict[str, Tensor] | None, dict[str, Tensor]]:
    """``(pose_encoder.pth, pose.pth)`` contents; the first is None unless kind is "separate"."""
    encoder_dict = None if pose_net.encoder is None else _clone(pose_net.encoder)
    return encoder_dict, _clone(pose_net.head)


def pose_net_from_monodepth2(
    pose_encoder_dict: Mapping[str, Tensor] | None,
    pose_dict: Mapping[str, Tensor],
    num_layers: int | None = None,
) -> PoseNet:
    """Build a :class:`PoseNet` from Monodepth2's ``pose_encoder.pth`` and ``pose.pth``.

    The kind follows from the files: a pose encoder means ``"separate"``; a ``pose_conv``
    layer means ``"posecnn"``; otherwise ``"shared"`` (its depth, which only sets the input
    channels, is read from the squeeze conv when ``num_layers`` is None).

    Raises:
        ValueError: naming the file and its missing/unexpected keys or mismatched shapes.
    """
    if pose_encoder_dict is not None:
        kind = "separate"
        if num_layers is None:
            num_layers = infer_num_layers(pose_encoder_dict, "pose_encoder.pth")
    elif "pose_conv.weight" in pose_dict:
        kind, num_layers = "posecnn", num_layers or 18
    else:
        kind = "shared"
        if num_layers is None:
            if "net.0.weight" not in pose_dict:
                raise ValueError("pose.pth: no squeeze conv net.0.weight; not a Monodepth2 pose")
            channels = int(pose_dict["net.0.weight"].shape[1])
            num_layers = 18 if channels == resnet_out_channels(18)[-1] else 50
    net = PoseNet(kind=kind, num_layers=num_layers, pretrained=False)
    if net.encoder is not None:
        assert pose_encoder_dict is not None
        load_state_checked(net.encoder, pose_encoder_dict, "pose_encoder.pth")
    load_state_checked(net.head, pose_dict, "pose.pth")
    return net


def save_monodepth2(
    folder: str | Path,
    depth_net: DepthNet,
    height: int,
    width: int,
    pose_net: PoseNet | None = None,
    use_stereo: bool = False,
    settings: Mapping[str, float | None] | None = None,
) -> Path:
    """Write a complete Monodepth2 weights folder (see :func:`write_monodepth2_files`) and
    return it."""
    write_monodepth2_files(folder, depth_net, height, width, pose_net, use_stereo, settings)
    return Path(folder)


def write_monodepth2_files(
    folder: str | Path,
    depth_net: DepthNet,
    height: int,
    width: int,
    pose_net: PoseNet | None = None,
    use_stereo: bool = False,
    settings: Mapping[str, float | None] | None = None,
    parts: tuple[str, ...] = ("encoder", "depth", "pose"),
) -> list[Path]:
    """Write a Monodepth2 weights folder: ``encoder.pth``, ``depth.pth`` and, with a
    ``pose_net``, ``pose.pth`` (and ``pose_encoder.pth`` for a separate pose encoder).

    Args:
        settings: see :func:`depth_net_to_monodepth2`.
        parts: which of "encoder", "depth" and "pose" to write (``mono export --part``).

    Returns:
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    if "encoder" in parts or "depth" in parts:
        encoder_dict, depth_dict = depth_net_to_monodepth2(
            depth_net, height, width, use_stereo, settings
        )
        if "encoder" in parts:
            files["encoder.pth"] = encoder_dict
        if "depth" in parts:
            files["depth.pth"] = depth_dict
    if "pose" in parts and pose_net is not None:
        pose_encoder_dict, pose_dict = pose_net_to_monodepth2(pose_net)
        if pose_encoder_dict is not None:
            files["pose_encoder.pth"] = pose_encoder_dict
        files["pose.pth"] = pose_dict
    for name, state in files.items():
        torch.save(state, folder / name)
    return [folder / name for name in files]


def load_monodepth2(
    folder: str | Path, num_layers: int | None = None
) -> tuple[DepthNet, PoseNet | None, dict[str, Any]]:
    """Read a Monodepth2 weights folder.

    Returns:
        The depth network, the pose network (None without ``pose.pth``), and the encoder's
        metadata: ``height``, ``width`` (the training size), ``use_stereo`` and, in folders
        written by mono, the :data:`MONO_SETTINGS`.
    """
    folder = Path(folder)
    if not (folder / "encoder.pth").is_file() or not (folder / "depth.pth").is_file():
        raise FileNotFoundError(f"{folder}: a Monodepth2 folder needs encoder.pth and depth.pth")

    def read(name: str) -> dict[str, Any]:
        return torch.load(folder / name, map_location="cpu", weights_only=True)

    encoder_dict = read("encoder.pth")
    depth_net = depth_net_from_monodepth2(encoder_dict, read("depth.pth"), num_layers)
    meta = {k: encoder_dict[k] for k in ENCODER_META_KEYS if k in encoder_dict}
    pose_net = None
    if (folder / "pose.pth").is_file():
        pose_encoder = read("pose_encoder.pth") if (folder / "pose_encoder.pth").is_file() else None
        pose_net = pose_net_from_monodepth2(pose_encoder, read("pose.pth"), num_layers)
    return depth_net, pose_net, meta
