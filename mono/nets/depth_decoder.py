"""Monodepth2's U-Net depth decoder (Godard et al., "Digging Into Self-Supervised Monocular
Depth Estimation", ICCV 2019).

All layers live in one ``nn.ModuleList`` named ``decoder`` in Monodepth2's order, so that
``DepthDecoder.state_dict()`` has exactly the keys of its ``depth.pth``:
``decoder.0`` .. ``decoder.9`` are the ConvBlocks upconv(4, 0), upconv(4, 1), upconv(3, 0), ...,
upconv(0, 1) (keys ``decoder.{i}.conv.conv.weight``), followed by one disparity conv per scale
(keys ``decoder.{10 + s}.conv.weight``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DECODER_CHANNELS = (16, 32, 64, 128, 256)  # channels after upconv stage i = 0..4


class Conv3x3(nn.Module):
    """Reflection-padded 3x3 convolution; keeps the spatial size.

    Reflection padding avoids the dark border a zero-padded conv would print on the disparity.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(int(in_channels), int(out_channels), kernel_size=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """:class:`Conv3x3` followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


def check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    """Validate output scales: they must be 0, 1, ..., n - 1 (n <= 5) so ``disps[s]`` is scale s."""
    scales = tuple(int(s) for s in scales)
    if not scales or scales != tuple(range(len(scales))) or len(scales) > len(DECODER_CHANNELS):
        raise ValueError(f"scales={scales!r} must be (0,), (0, 1), ... up to (0, 1, 2, 3, 4)")
    return scales


class DepthDecoder(nn.Module):
    """Decode ResNet features into sigmoid disparities at several scales.

    For stage i = 4 .. 0: ConvBlock, nearest x2 upsampling, concatenation with the encoder
    feature ``features[i - 1]`` (skip, when i > 0), ConvBlock; at every stage i that is an
    output scale a :class:`Conv3x3` + sigmoid gives the disparity at 1 / 2**i of the input.

    Args:
        num_ch_enc: channels of the five encoder feature maps (``ResnetEncoder.num_ch_enc``).
        scales: output scales, ``(0, 1, 2, 3)`` in Monodepth2.
        num_output_channels: channels of each output map.
        use_skips: concatenate encoder features (U-Net skips).
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int],
        scales: Sequence[int] = (0, 1, 2, 3),
        num_output_channels: int = 1,
        use_skips: bool = True,
    ):
        super().__init__()
        if len(num_ch_enc) != 5:
            raise ValueError(f"num_ch_enc must list 5 channel counts, got {list(num_ch_enc)}")
        self.num_ch_enc = [int(c) for c in num_ch_enc]
        self.num_ch_dec = list(DECODER_CHANNELS)
        self.scales = check_scales(scales)
        self.num_output_channels = num_output_channels
        self.use_skips = use_skips

        layers: list[nn.Module] = []
        for i in range(4, -1, -1):
            in_ch = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            layers.append(ConvBlock(in_ch, self.num_ch_dec[i]))
            in_ch = self.num_ch_dec[i] + (self.num_ch_enc[i - 1] if use_skips and i > 0 else 0)
            layers.append(ConvBlock(in_ch, self.num_ch_dec[i]))
        for s in self.scales:
            layers.append(Conv3x3(self.num_ch_dec[s], num_output_channels))
        self.decoder = nn.ModuleList(layers)

    def upconv(self, stage: int, j: int) -> nn.Module:
        """ConvBlock ``j`` (0: before upsampling, 1: after) of decoder stage 4 .. 0."""
        return self.decoder[2 * (4 - stage) + j]

    def dispconv(self, scale: int) -> nn.Module:
        """Disparity head at ``scale``."""
        return self.decoder[10 + scale]

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Decode.

        Args:
            features: the five encoder maps, strides 2 .. 32, (B, num_ch_enc[k], H/2^(k+1), ...).

        Returns:
            Sigmoid disparities in (0, 1), finest first: element s is
            (B, num_output_channels, H / 2**s, W / 2**s).
        """
        disps: dict[int, Tensor] = {}
        x = features[-1]
        for i in range(4, -1, -1):
            x = F.interpolate(self.upconv(i, 0)(x), scale_factor=2, mode="nearest")
            if self.use_skips and i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.upconv(i, 1)(x)
            if i in self.scales:
                disps[i] = torch.sigmoid(self.dispconv(i)(x))
        return [disps[s] for s in self.scales]
