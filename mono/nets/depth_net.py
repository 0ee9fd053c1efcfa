"""Monodepth2's depth network: a ResNet encoder and the U-Net disparity decoder."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from mono.nets.depth_decoder import DepthDecoder
from mono.nets.depth_predictor import MONODEPTH2_DEPTH_RANGE, DepthPredictor
from mono.nets.resnet_encoder import ResnetEncoder
from mono.types import DepthOutput

SIZE_MULTIPLE = 32  # the encoder downsamples five times; the decoder's skips must line up
MIN_SIZE = 64


def check_input_size(height: int, width: int) -> None:
    """Raise ValueError unless (height, width) suits :class:`DepthNet`.

    The five stride-2 stages of the encoder and the x2 upsampling of the decoder only give
    feature maps of matching size for the U-Net skips when both sides are multiples of 32;
    the reflection padding of the decoder needs the deepest map to be at least 2 x 2.
    """
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < MIN_SIZE:
        raise ValueError(
            f"depth network input height={height}, width={width} must be multiples of "
            f"{SIZE_MULTIPLE}, at least {MIN_SIZE} (e.g. 192 x 640 for KITTI)"
        )


class DepthNet(DepthPredictor):
    """ResNet encoder + :class:`DepthDecoder` predicting sigmoid disparity.

    Args:
        num_layers: ResNet depth (18, 34, 50, 101, 152).
        pretrained: ImageNet initialisation of the encoder.
        scales: output scales, 0 (full resolution) .. 3 in Monodepth2.
        min_depth, max_depth, metric_scale: what the disparity means
            (:class:`~mono.nets.depth_predictor.DepthPredictor`).

    Attributes:
        encoder: :class:`ResnetEncoder`; its state dict is Monodepth2's ``encoder.pth``.
        decoder: :class:`DepthDecoder`; its state dict is Monodepth2's ``depth.pth``.
    """

    def __init__(
        self,
        num_layers: int = 18,
        pretrained: bool = False,
        scales: Sequence[int] = (0, 1, 2, 3),
        min_depth: float = MONODEPTH2_DEPTH_RANGE[0],
        max_depth: float = MONODEPTH2_DEPTH_RANGE[1],
        metric_scale: float | None = None,
    ):
        super().__init__(min_depth, max_depth, metric_scale)
        self.encoder = ResnetEncoder(num_layers, pretrained=pretrained)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, scales=scales)

    @property
    def scales(self) -> tuple[int, ...]:
        return self.decoder.scales

    def settings(self) -> dict:
        """What :func:`mono.nets.build_depth_net` ("resnet") needs to build this network again."""
        return {
            "num_layers": self.encoder.num_layers,
            "scales": list(self.scales),
            **self.range_settings(),
        }

    def encode(self, image: Tensor) -> list[Tensor]:
        """Encoder features of ``image`` (B, 3, H, W) in [0, 1]; H and W multiples of 32, >= 64.

        Exposed so a ``"shared"`` pose network can reuse them (see :class:`mono.nets.PoseNet`).
        """
        check_input_size(image.shape[-2], image.shape[-1])
        return self.encoder(image)

    def decode(self, features: Sequence[Tensor]) -> DepthOutput:
        """Disparities from :meth:`encode`'s features."""
        return DepthOutput(disps=self.decoder(features))

    def forward(self, image: Tensor) -> DepthOutput:
        """Predict disparity.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32, >= 64.

        Returns:
            DepthOutput whose ``disps[s]`` is (B, 1, H / 2**s, W / 2**s) in (0, 1).
        """
        return self.decode(self.encode(image))
