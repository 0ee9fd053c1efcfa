"""Two-stage coarse/fine depth network of Eigen, Puhrsch and Fergus, "Depth Map Prediction
from a Single Image using a Multi-Scale Deep Network", NIPS 2014 (Fig. 1).

The coarse stack sees the whole image (five convs, then two fully connected layers) and
predicts a global depth layout at 1/4 resolution; the fine stack refines it with local
evidence (a conv on the image, concatenated with the coarse map as an extra channel, two more
convs). Here the output is a sigmoid disparity upsampled to the input size, so the network
plugs into the same self-supervised losses as :class:`mono.nets.DepthNet`.

Adaptations: the conv output is average-pooled to a grid sized from the construction size
(``height // 64`` x ``width // 64``) before the first FC layer, and the coarse map produced for
the construction size is resized bilinearly when a different size comes in, so any input size
works; the FC width is 1024 instead of 4096 to keep the FC layers near ResNet-18's size at
KITTI's 192 x 640.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mono.nets.depth_predictor import MONODEPTH2_DEPTH_RANGE, DepthPredictor
from mono.nets.resnet_encoder import INPUT_MEAN, INPUT_STD
from mono.types import DepthOutput

# (out_channels, kernel, stride, maxpool after) of the coarse convs, as in the paper.
_COARSE_CONVS = ((96, 11, 4, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False))
_COARSE_LAST = 256
_FINE_CHANNELS = 63  # + 1 coarse channel = 64, as in the paper


def _conv_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2), nn.ReLU(inplace=True)]


class EigenCoarseFine(DepthPredictor):
    """Eigen et al. (2014) coarse + fine network predicting one full-resolution disparity.

    Args:
        height, width: input size the fully connected layers are sized for (other sizes are
            accepted; the coarse map is then resized).
        hidden: width of the first fully connected layer.
        dropout: dropout after the first fully connected layer (the paper uses it).
        min_depth, max_depth, metric_scale: what the disparity means
            (:class:`~mono.nets.depth_predictor.DepthPredictor`).
    """

    def __init__(
        self,
        height: int,
        width: int,
        hidden: int = 1024,
        dropout: float = 0.5,
        min_depth: float = MONODEPTH2_DEPTH_RANGE[0],
        max_depth: float = MONODEPTH2_DEPTH_RANGE[1],
        metric_scale: float | None = None,
    ):
        super().__init__(min_depth, max_depth, metric_scale)
        if height < 4 or width < 4:
            raise ValueError(f"EigenCoarseFine height={height}, width={width} must be at least 4")
        self.height, self.width, self.hidden = height, width, hidden
        self.coarse_size = (height // 4, width // 4)
        grid = (max(1, height // 64), max(1, width // 64))

        layers: list[nn.Module] = []
        in_ch = 3
        for out_ch, kernel, stride, pool in _COARSE_CONVS:
            layers += _conv_relu(in_ch, out_ch, kernel, stride)
            if pool:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            in_ch = out_ch
        layers += _conv_relu(in_ch, _COARSE_LAST, 3)
        layers.append(nn.AdaptiveAvgPool2d(grid))
        self.coarse_convs = nn.Sequential(*layers)
        self.coarse_fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(_COARSE_LAST * grid[0] * grid[1], hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, self.coarse_size[0] * self.coarse_size[1]),  # linear, as in paper
        )
        self.fine_image = nn.Sequential(
            *_conv_relu(3, _FINE_CHANNELS, 9, stride=2), nn.MaxPool2d(2, ceil_mode=True)
        )
        self.fine_refine = nn.Sequential(
            *_conv_relu(_FINE_CHANNELS + 1, 64, 5), nn.Conv2d(64, 1, 5, padding=2)
        )

    def settings(self) -> dict:
        """What :func:`mono.nets.build_depth_net` ("eigen") needs to build this network again."""
        return {
            "height": self.height,
            "width": self.width,
            "hidden": self.hidden,
            **self.range_settings(),
        }

    def forward(self, image: Tensor) -> DepthOutput:
        """Predict disparity.

        Args:
            image: (B, 3, H, W) RGB in [0, 1], any H, W >= 4.

        Returns:
            DepthOutput with a single map, ``disps[0]`` (B, 1, H, W) in (0, 1).
        """
        height, width = image.shape[-2:]
        x = (image - INPUT_MEAN) / INPUT_STD
        coarse = self.coarse_fc(self.coarse_convs(x)).view(-1, 1, *self.coarse_size)
        fine = self.fine_image(x)  # (B, 63, ~H/4, ~W/4)
        if coarse.shape[-2:] != fine.shape[-2:]:
            coarse = F.interpolate(
                coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False
            )
        disp = torch.sigmoid(self.fine_refine(torch.cat([fine, coarse], dim=1)))
        disp = F.interpolate(disp, size=(height, width), mode="bilinear", align_corners=False)
        return DepthOutput(disps=[disp])
