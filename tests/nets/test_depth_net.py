"""DepthDecoder / DepthNet: scales, ranges, gradients, input-size checks, the registry."""

import pytest
import torch

from mono.nets import (
    DEPTH_NETS,
    DepthDecoder,
    DepthNet,
    EigenCoarseFine,
    build_depth_net,
    check_input_size,
)
from mono.types import DepthOutput


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DepthNet(num_layers=18)


def test_output_shapes_per_scale_and_range(net):
    out = net(torch.rand(2, 3, 64, 96))
    assert isinstance(out, DepthOutput)
    assert [tuple(d.shape) for d in out.disps] == [
        (2, 1, 64, 96),
        (2, 1, 32, 48),
        (2, 1, 16, 24),
        (2, 1, 8, 12),
    ]
    for d in out.disps:
        assert d.min() > 0 and d.max() < 1


def test_every_parameter_receives_gradient(net):
    net.zero_grad()
    out = net(torch.rand(2, 3, 64, 64))
    sum(d.mean() for d in out.disps).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("h", "w"), [(50, 96), (64, 100)])
def test_size_not_multiple_of_32_is_rejected(net, h, w):
    with pytest.raises(ValueError, match=f"height={h}, width={w} must be multiples of 32"):
        net(torch.rand(1, 3, h, w))


def test_check_input_size():
    check_input_size(192, 640)
    check_input_size(64, 64)
    with pytest.raises(
        ValueError, match="height=32, width=64 must be multiples of 32, at least 64"
    ):
        check_input_size(32, 64)
    with pytest.raises(ValueError, match="height=190, width=640"):
        check_input_size(190, 640)


def test_zero_decoder_gives_half_disparity():
    dec = DepthDecoder([64, 64, 128, 256, 512], scales=(0, 1))
    for p in dec.parameters():
        torch.nn.init.zeros_(p)
    # Features of a 64 x 64 image: strides 2 .. 32.
    feats = [torch.rand(1, c, 32 >> k, 32 >> k) for k, c in enumerate([64, 64, 128, 256, 512])]
    disps = dec(feats)
    assert len(disps) == 2
    assert torch.equal(disps[0], torch.full((1, 1, 64, 64), 0.5))
    assert torch.equal(disps[1], torch.full((1, 1, 32, 32), 0.5))


def test_decoder_without_skips_has_narrower_convs():
    with_skips = DepthDecoder([64, 64, 128, 256, 512])
    without = DepthDecoder([64, 64, 128, 256, 512], use_skips=False)
    # upconv(4, 1) takes 256 decoder channels + 256 skip channels of layer3.
    assert with_skips.upconv(4, 1).conv.conv.in_channels == 512
    assert without.upconv(4, 1).conv.conv.in_channels == 256
    assert with_skips.upconv(0, 1).conv.conv.in_channels == 16  # no skip at stage 0


def test_invalid_scales():
    with pytest.raises(ValueError, match="scales"):
        DepthDecoder([64, 64, 128, 256, 512], scales=(1, 2))


def test_registry():
    assert set(DEPTH_NETS) == {"resnet", "eigen"}
    assert isinstance(build_depth_net("eigen", height=32, width=64), EigenCoarseFine)
    assert build_depth_net("resnet", scales=(0,)).scales == (0,)
    with pytest.raises(ValueError, match=r"name='vgg'.*\['eigen', 'resnet'\]"):
        build_depth_net("vgg")


@pytest.mark.parametrize(
    "options",
    [
        {"depth_net": "resnet", "num_layers": 34, "scales": (0, 1)},
        {"depth_net": "eigen", "height": 64, "width": 96},
    ],
)
def test_a_network_rebuilds_from_its_name_and_settings(options):
    # What export and checkpoint loading rely on: name + settings give the same layers back.
    from mono.nets import build_depth_net, depth_net_from_options, depth_net_name

    net = depth_net_from_options(**options)
    again = build_depth_net(depth_net_name(net), **net.settings())
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in again.state_dict().items()} == shapes
    assert depth_net_name(net) == options["depth_net"]
