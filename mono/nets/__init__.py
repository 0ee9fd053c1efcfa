"""Networks: Monodepth2's ResNet depth and pose networks and Eigen et al.'s coarse/fine net.

Only torch and torchvision are imported here (and :mod:`mono.geometry` by the learned camera
of ``intrinsics.py``). Depth networks are built by name through
:func:`build_depth_net`; every depth network maps an image (B, 3, H, W) in [0, 1] to a
:class:`mono.types.DepthOutput` of sigmoid disparities, finest first.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from mono.nets.depth_decoder import DepthDecoder
from mono.nets.depth_net import DepthNet, check_input_size
from mono.nets.eigen import EigenCoarseFine
from mono.nets.intrinsics import LearnedIntrinsics
from mono.nets.pose import POSE_KINDS, PoseCNN, PoseDecoder, PoseKind, PoseNet
from mono.nets.resnet_encoder import ResnetEncoder

DEPTH_NETS: dict[str, type[nn.Module]] = {"resnet": DepthNet, "eigen": EigenCoarseFine}
# The registry's names as a type, for options that name a depth network (kept equal by a test).
DepthNetName = Literal["resnet", "eigen"]


def build_depth_net(name: str = "resnet", **kwargs) -> nn.Module:
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


__all__ = [
    "DEPTH_NETS",
    "DepthNetName",
    "POSE_KINDS",
    "DepthDecoder",
    "DepthNet",
    "EigenCoarseFine",
    "LearnedIntrinsics",
    "PoseCNN",
    "PoseDecoder",
    "PoseKind",
    "PoseNet",
    "ResnetEncoder",
    "build_depth_net",
    "check_input_size",
]
