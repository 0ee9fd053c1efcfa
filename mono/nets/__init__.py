"""Networks: Monodepth2's ResNet depth and pose networks and Eigen et al.'s coarse/fine net.

Only torch and torchvision are imported here (and :mod:`mono.geometry` by the learned camera
of ``intrinsics.py``). Depth networks are built by name through
:func:`build_depth_net`; every depth network maps an image (B, 3, H, W) in [0, 1] to a
:class:`mono.types.DepthOutput` of sigmoid disparities, finest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from mono.nets.depth_decoder import DepthDecoder
from mono.nets.depth_net import DepthNet, check_input_size
from mono.nets.depth_predictor import MONODEPTH2_DEPTH_RANGE, DepthPredictor
from mono.nets.eigen import EigenCoarseFine
from mono.nets.intrinsics import LearnedIntrinsics
from mono.nets.pose import POSE_KINDS, PoseCNN, PoseDecoder, PoseKind, PoseNet
from mono.nets.resnet_encoder import ResnetEncoder

DEPTH_NETS: dict[str, type[DepthPredictor]] = {"resnet": DepthNet, "eigen": EigenCoarseFine}
# The registry's names as a type, for options that name a depth network (kept equal by a test).
DepthNetName = Literal["resnet", "eigen"]


def build_depth_net(name: str = "resnet", **kwargs) -> DepthPredictor:
    """Build a depth network by registry name.

    Args:
        name: ``"resnet"`` (:class:`DepthNet`: num_layers, pretrained, scales) or ``"eigen"``
            (:class:`EigenCoarseFine`: height, width, hidden, dropout).
        **kwargs: passed to the constructor.

    Raises:
        ValueError: for an unknown name, listing the choices.
    """
    if name not in DEPTH_NETS:
        raise ValueError(
            f"depth net name={name!r} is not known; choose one of {sorted(DEPTH_NETS)}"
        )
    return DEPTH_NETS[name](**kwargs)


def depth_net_name(net: nn.Module) -> str:
    """The registry name of a depth network (for saving what :func:`build_depth_net` needs)."""
    for name, cls in DEPTH_NETS.items():
        if type(net) is cls:
            return name
    raise ValueError(f"{type(net).__name__} is not a registered depth network")


def depth_net_from_options(
    depth_net: str = "resnet",
    num_layers: int = 18,
    scales: Sequence[int] = (0, 1, 2, 3),
    height: int = 192,
    width: int = 640,
    pretrained: bool = False,
    min_depth: float = MONODEPTH2_DEPTH_RANGE[0],
    max_depth: float = MONODEPTH2_DEPTH_RANGE[1],
    metric_scale: float | None = None,
) -> DepthPredictor:
    """The depth network that a ``DepthModel``'s options (``model.depth_net``, ...) describe.

    The LightningModule and checkpoint loading both build through here, so a network is the
    same whoever builds it. ``"resnet"`` reads num_layers, scales and pretrained; ``"eigen"``
    reads the input size; both carry the depth range and metric scale.
    """
    meaning = {"min_depth": min_depth, "max_depth": max_depth, "metric_scale": metric_scale}
    if depth_net == "eigen":
        return build_depth_net("eigen", height=height, width=width, **meaning)
    return build_depth_net(
        depth_net, num_layers=num_layers, pretrained=pretrained, scales=tuple(scales), **meaning
    )


__all__ = [
    "DEPTH_NETS",
    "DepthNetName",
    "POSE_KINDS",
    "DepthDecoder",
    "DepthNet",
    "DepthPredictor",
    "MONODEPTH2_DEPTH_RANGE",
    "EigenCoarseFine",
    "LearnedIntrinsics",
    "PoseCNN",
    "PoseDecoder",
    "PoseKind",
    "PoseNet",
    "ResnetEncoder",
    "build_depth_net",
    "depth_net_from_options",
    "depth_net_name",
    "check_input_size",
]
