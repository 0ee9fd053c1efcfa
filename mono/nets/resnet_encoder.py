"""ResNet feature encoder shared by the depth and pose networks (Monodepth2, Godard et al. 2019).

The torchvision ResNet is held in an attribute named ``encoder`` so that
``ResnetEncoder.state_dict()`` has exactly the keys of Monodepth2's ``encoder.pth`` and
``pose_encoder.pth`` (``encoder.conv1.weight``, ``encoder.layer1.0.bn1.running_mean``, ...,
``encoder.fc.weight``); see :mod:`mono.nets.monodepth2_format`.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models import (
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    ResNet152_Weights,
)

# Per-channel statistics Monodepth2 normalises its [0, 1] input with (one value for all channels).
INPUT_MEAN = 0.45
INPUT_STD = 0.225

_RESNETS = {
    18: (torchvision.models.resnet18, ResNet18_Weights.IMAGENET1K_V1),
    34: (torchvision.models.resnet34, ResNet34_Weights.IMAGENET1K_V1),
    50: (torchvision.models.resnet50, ResNet50_Weights.IMAGENET1K_V1),
    101: (torchvision.models.resnet101, ResNet101_Weights.IMAGENET1K_V1),
    152: (torchvision.models.resnet152, ResNet152_Weights.IMAGENET1K_V1),
}
RESNET_LAYERS = tuple(_RESNETS)


class ClassifierStub(nn.Module):
    """The ImageNet classifier of a torchvision ResNet, kept only as state-dict entries.

    Monodepth2 saves the unused ``fc`` layer in its encoder files. Holding its weights as
    buffers keeps the file layout identical while the optimiser and DDP see no parameters
    that never receive a gradient.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().clone())
        self.register_buffer("bias", linear.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        raise RuntimeError("the ResNet classifier is not part of the depth/pose encoder")


def resnet_out_channels(num_layers: int) -> list[int]:
    """Channels of the five feature maps of :class:`ResnetEncoder` for a ResNet depth."""
    check_num_layers(num_layers)
    widen = 4 if num_layers > 34 else 1  # bottleneck blocks expand channels four times
    return [64, 64 * widen, 128 * widen, 256 * widen, 512 * widen]


def check_num_layers(num_layers: int) -> None:
    """Raise ValueError unless ``num_layers`` is a torchvision ResNet depth."""
    if num_layers not in _RESNETS:
        raise ValueError(
            f"num_layers={num_layers!r} is not supported; choose one of {RESNET_LAYERS}"
        )


def _load_pretrained(num_layers: int) -> dict[str, Tensor]:
    weights = _RESNETS[num_layers][1]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as error:  # urllib's URLError is an OSError
        raise RuntimeError(
            f"could not download the ImageNet weights of resnet{num_layers} ({weights.url}): "
            f"{error}. Without internet access, use pretrained=False, or pre-populate the torch "
            f"hub cache ({torch.hub.get_dir()}/checkpoints) with that file."
        ) from error


class ResnetEncoder(nn.Module):
    """ResNet trunk returning the five feature maps Monodepth2's decoders consume.

    Args:
        num_layers: ResNet depth, one of 18, 34, 50, 101, 152.
        pretrained: start from torchvision's ImageNet weights (``IMAGENET1K_V1``, downloaded
            into the torch hub cache on first use).
        num_input_images: frames stacked along channels; ``conv1`` takes ``3 * N`` channels.
            Pretrained ``conv1`` weights are repeated over the N frames and divided by N, so a
            stack of identical frames gives the single-image response (as in Monodepth2).

    Attributes:
        num_ch_enc: channels of the five feature maps, e.g. [64, 64, 128, 256, 512] for 18/34
            and [64, 256, 512, 1024, 2048] for 50 and deeper.
    """

    def __init__(self, num_layers: int = 18, pretrained: bool = False, num_input_images: int = 1):
        super().__init__()
        check_num_layers(num_layers)
        if num_input_images < 1:
            raise ValueError(f"num_input_images={num_input_images!r} must be at least 1")
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.num_ch_enc = resnet_out_channels(num_layers)

        resnet = _RESNETS[num_layers][0](weights=None)
        if num_input_images > 1:
            resnet.conv1 = nn.Conv2d(
                3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False
            )
            nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
        if pretrained:
            state = _load_pretrained(num_layers)
            state["conv1.weight"] = (
                state["conv1.weight"].repeat(1, num_input_images, 1, 1) / num_input_images
            )
            resnet.load_state_dict(state)
        resnet.fc = ClassifierStub(resnet.fc)
        self.encoder = resnet

    def forward(self, images: Tensor) -> list[Tensor]:
        """Encode an image (stack).

        Args:
            images: (B, 3 * N, H, W) RGB in [0, 1], N = ``num_input_images``.

        Returns:
            Five feature maps, strides 2, 4, 8, 16, 32:
            ``[relu(bn1(conv1)), layer1(maxpool(.)), layer2, layer3, layer4]``.
        """
        net = self.encoder
        x = (images - INPUT_MEAN) / INPUT_STD
        f0 = net.relu(net.bn1(net.conv1(x)))
        f1 = net.layer1(net.maxpool(f0))
        f2 = net.layer2(f1)
        f3 = net.layer3(f2)
        f4 = net.layer4(f3)
        return [f0, f1, f2, f3, f4]
