"""Relative-pose networks of Monodepth2 (Godard et al. 2019, Sec. 4 and Table 6).

Parameter names follow Monodepth2's files: :class:`PoseDecoder` and :class:`PoseCNN` hold their
convolutions in a ``ModuleList`` named ``net`` (keys ``net.{i}.weight``; PoseCNN adds
``pose_conv.*``), exactly as in ``pose.pth``; the separate encoder is a
:class:`ResnetEncoder` whose state dict is ``pose_encoder.pth``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from mono.geometry import pose_vec_to_mat
from mono.nets.resnet_encoder import ResnetEncoder, resnet_out_channels

PoseKind = Literal["separate", "shared", "posecnn"]
POSE_KINDS: tuple[str, ...] = get_args(PoseKind)
POSE_SCALE = 0.01  # Monodepth2 scales the raw outputs so the initial motion is near identity


def _split_pose(raw: Tensor, num_frames: int) -> tuple[Tensor, Tensor]:
    """(B, 6 * F, h, w) conv output -> axisangle, translation, each (B, F, 1, 3)."""
    out = POSE_SCALE * raw.mean(dim=(2, 3)).view(-1, num_frames, 1, 6)
    return out[..., :3], out[..., 3:]


class PoseDecoder(nn.Module):
    """Pose head on the deepest ResNet features of one or more inputs.

    Each input is squeezed by a 1x1 conv (256 channels) + ReLU, the inputs are concatenated,
    then two 3x3 convs (256) + ReLU and a 1x1 conv to ``6 * num_frames_to_predict_for``
    channels, averaged over space and scaled by 0.01.

    Args:
        num_ch_enc: encoder channels; only the last (deepest) entry is used.
        num_input_features: number of feature maps concatenated (1 for an encoder that saw the
            stacked pair, 2 for per-frame features of a shared encoder).
        num_frames_to_predict_for: poses predicted per forward pass; callers use frame 0.
        stride: stride of the two 3x3 convs.
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int],
        num_input_features: int,
        num_frames_to_predict_for: int = 2,
        stride: int = 1,
    ):
        super().__init__()
        self.num_input_features = num_input_features
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.net = nn.ModuleList(
            [
                nn.Conv2d(int(num_ch_enc[-1]), 256, 1),  # squeeze
                nn.Conv2d(num_input_features * 256, 256, 3, stride, 1),
                nn.Conv2d(256, 256, 3, stride, 1),
                nn.Conv2d(256, 6 * num_frames_to_predict_for, 1),
            ]
        )

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Predict poses.

        Args:
            features: ``num_input_features`` deepest feature maps, each (B, C, h, w).

        Returns:
            axisangle, translation: (B, num_frames_to_predict_for, 1, 3) each.
        """
        if len(features) != self.num_input_features:
            raise ValueError(
                f"PoseDecoder expects {self.num_input_features} feature maps, got {len(features)}"
            )
        squeeze, conv0, conv1, conv2 = self.net
        x = torch.cat([torch.relu(squeeze(f)) for f in features], dim=1)
        x = conv2(torch.relu(conv1(torch.relu(conv0(x)))))
        return _split_pose(x, self.num_frames_to_predict_for)


class PoseCNN(nn.Module):
    """Monodepth2's light pose network on stacked frames ('posecnn').

    Seven stride-2 convs (16, 32, 64, 128, 256, 256, 256 channels; kernels 7, 5, 3, ...) with
    ReLU, a 1x1 conv to ``6 * (num_input_frames - 1)``, spatial mean, times 0.01.
    """

    def __init__(self, num_input_frames: int = 2):
        super().__init__()
        if num_input_frames < 2:
            raise ValueError(f"num_input_frames={num_input_frames!r} must be at least 2")
        self.num_input_frames = num_input_frames
        specs = [(16, 7), (32, 5), (64, 3), (128, 3), (256, 3), (256, 3), (256, 3)]
        convs, in_ch = [], 3 * num_input_frames
        for out_ch, kernel in specs:
            convs.append(nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2))
            in_ch = out_ch
        self.net = nn.ModuleList(convs)
        self.pose_conv = nn.Conv2d(in_ch, 6 * (num_input_frames - 1), 1)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Args: frames (B, 3 * N, H, W). Returns axisangle, translation (B, N - 1, 1, 3)."""
        x = frames
        for conv in self.net:
            x = torch.relu(conv(x))
        return _split_pose(self.pose_conv(x), self.num_input_frames - 1)


def _last_features(features: Tensor | Sequence[Tensor] | None, name: str) -> Tensor:
    if features is None:
        raise ValueError(
            f"PoseNet(kind='shared') needs {name}: the depth encoder's features of that frame"
        )
    return features if isinstance(features, Tensor) else features[-1]


class PoseNet(nn.Module):
    """Relative pose between two frames.

    Args:
        kind: ``"separate"`` (own ResNet on the stacked pair + :class:`PoseDecoder`, Monodepth2's
            default), ``"shared"`` (:class:`PoseDecoder` on the depth encoder's deepest
            features of each frame) or ``"posecnn"`` (:class:`PoseCNN` on the stacked pair).
        num_layers: ResNet depth of the separate encoder, or of the shared depth encoder (it
            sets the channels the decoder expects).
        pretrained: ImageNet initialisation of the separate encoder.

    Attributes:
        encoder: the separate :class:`ResnetEncoder` (``pose_encoder.pth``), else None.
        head: :class:`PoseDecoder` or :class:`PoseCNN` (``pose.pth``).
    """

    def __init__(self, kind: str = "separate", num_layers: int = 18, pretrained: bool = False):
        super().__init__()
        if kind not in POSE_KINDS:
            raise ValueError(f"pose kind={kind!r} is not supported; choose one of {POSE_KINDS}")
        self.kind = kind
        self.num_layers = num_layers
        self.encoder: ResnetEncoder | None = None
        self.head: nn.Module
        if kind == "separate":
            self.encoder = ResnetEncoder(num_layers, pretrained=pretrained, num_input_images=2)
            # Monodepth2 predicts two poses here and uses the first; kept for weight parity.
            self.head = PoseDecoder(self.encoder.num_ch_enc, 1, num_frames_to_predict_for=2)
        elif kind == "shared":
            self.head = PoseDecoder(resnet_out_channels(num_layers), 2, num_frames_to_predict_for=1)
        else:
            self.head = PoseCNN(num_input_frames=2)

    def forward(
        self,
        frame_a: Tensor,
        frame_b: Tensor,
        features_a: Tensor | Sequence[Tensor] | None = None,
        features_b: Tensor | Sequence[Tensor] | None = None,
        encode: Callable[[Tensor], Sequence[Tensor]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pose of the ordered pair [a, b] (order them temporally, as Monodepth2 does).

        Args:
            frame_a, frame_b: (B, 3, H, W) RGB in [0, 1].
            features_a, features_b: for ``kind="shared"`` only, the depth encoder's features of
                each frame (the list from ``DepthNet.encode`` or just its last map).
            encode: for ``kind="shared"`` without those features, the depth encoder (an image
                batch -> its feature maps), run here on both frames.

        Returns:
            axisangle (B, 3) and translation (B, 3); turning them into ``T_src_tgt`` (and
            inverting for a past source frame) is the caller's job.
        """
        if self.kind == "separate":
            assert self.encoder is not None
            features = [self.encoder(torch.cat([frame_a, frame_b], dim=1))[-1]]
            axisangle, translation = self.head(features)
        elif self.kind == "shared":
            if encode is not None and features_a is None and features_b is None:
                features_a, features_b = encode(frame_a), encode(frame_b)
            features = [
                _last_features(features_a, "features_a"),
                _last_features(features_b, "features_b"),
            ]
            axisangle, translation = self.head(features)
        else:
            axisangle, translation = self.head(torch.cat([frame_a, frame_b], dim=1))
        return axisangle[:, 0, 0], translation[:, 0, 0]

    def transforms(
        self,
        target: Tensor,
        sources: Sequence[Tensor],
        offsets: Sequence[int],
        target_features: Tensor | None = None,
        source_features: Sequence[Tensor] | None = None,
        encode: Callable[[Tensor], Sequence[Tensor]] | None = None,
    ) -> Tensor:
        """``T_src_tgt`` of every source frame: the one place that orders pairs, inverts and
        routes the shared encoder's features (training, pose evaluation and export call it).

        Each pair goes in temporal order, as Monodepth2 feeds it: ``[source, target]`` for a
        past source (``offset < 0``), whose predicted motion is then inverted, ``[target,
        source]`` for a future one. All pairs go through the network in one call.

        Args:
            target: (B, 3, H, W) target frames.
            sources: S (B, 3, H, W) source frames.
            offsets: each source's frame offset from the target (e.g. -1, 1), non-zero.
            target_features, source_features: for ``kind="shared"``, the depth encoder's
                deepest features of the target and of each source, if already computed.
            encode: for ``kind="shared"`` without those features, the depth encoder (an image
                batch -> its feature maps).

        Returns:
            (B, S, 4, 4) target-to-source transforms.
        """
        if len(sources) != len(offsets) or not sources or 0 in offsets:
            raise ValueError(f"transforms: {len(sources)} sources for offsets {list(offsets)}")
        feats_t, feats_s = target_features, source_features
        past = [offset < 0 for offset in offsets]
        first = torch.cat([src if p else target for src, p in zip(sources, past, strict=True)])
        second = torch.cat([target if p else src for src, p in zip(sources, past, strict=True)])
        feats_a = feats_b = None
        if self.kind == "shared" and feats_t is not None and feats_s is not None:
            pairs = list(zip(feats_s, past, strict=True))
            feats_a = torch.cat([fs if p else feats_t for fs, p in pairs])
            feats_b = torch.cat([feats_t if p else fs for fs, p in pairs])
        axisangle, translation = self(first, second, feats_a, feats_b, encode=encode)
        b = target.shape[0]
        return torch.stack(
            [
                pose_vec_to_mat(axisangle[j * b : (j + 1) * b], translation[j * b : (j + 1) * b], p)
                for j, p in enumerate(past)
            ],
            dim=1,
        )
