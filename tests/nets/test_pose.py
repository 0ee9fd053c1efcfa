"""PoseNet variants, PoseDecoder and PoseCNN: shapes, scaling, gradients, errors."""

import pytest
import torch

from mono.geometry import pose_vec_to_mat
from mono.nets import PoseCNN, PoseDecoder, PoseNet, ResnetEncoder


def _pair(b=2, h=64, w=96):
    torch.manual_seed(0)
    return torch.rand(b, 3, h, w), torch.rand(b, 3, h, w)


def _shared_features(b=2):
    return [torch.rand(b, 512, 2, 3, requires_grad=True) for _ in range(2)]


@pytest.mark.parametrize("kind", ["separate", "shared", "posecnn"])
def test_shapes_and_every_parameter_receives_gradient(kind):
    net = PoseNet(kind=kind)
    a, b = _pair()
    fa, fb = _shared_features() if kind == "shared" else (None, None)
    axisangle, translation = net(a, b, fa, fb)
    assert axisangle.shape == (2, 3) and translation.shape == (2, 3)
    (axisangle.sum() + translation.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if kind == "shared":
        assert fa.grad is not None and fa.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["separate", "posecnn"])
def test_output_is_scaled_first_frame_of_last_conv(kind):
    net = PoseNet(kind=kind)
    last = net.head.net[-1] if kind == "separate" else net.head.pose_conv
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.arange(1.0, last.out_channels + 1))
    axisangle, translation = net(*_pair(b=1))
    # Channels 1..6 belong to frame 0: axis-angle 0.01 * (1, 2, 3), translation 0.01 * (4, 5, 6).
    assert torch.allclose(axisangle, torch.tensor([[0.01, 0.02, 0.03]]))
    assert torch.allclose(translation, torch.tensor([[0.04, 0.05, 0.06]]))


def test_pair_order_matters():
    net = PoseNet("separate").eval()
    a, b = _pair(b=1)
    with torch.no_grad():
        assert not torch.allclose(net(a, b)[1], net(b, a)[1])


def test_shared_accepts_feature_lists():
    net = PoseNet("shared").eval()
    fa, fb = _shared_features(b=1)
    a, b = _pair(b=1)
    with torch.no_grad():
        direct = net(a, b, fa, fb)
        listed = net(a, b, [torch.zeros(1), fa], [torch.zeros(1), fb])
    assert torch.equal(direct[0], listed[0]) and torch.equal(direct[1], listed[1])


def test_shared_without_features_raises():
    with pytest.raises(ValueError, match="features_a"):
        PoseNet("shared")(*_pair(b=1))


def test_unknown_kind():
    with pytest.raises(ValueError, match=r"kind='flow'.*\('separate', 'shared', 'posecnn'\)"):
        PoseNet("flow")


def test_separate_encoder_takes_pair():
    net = PoseNet("separate")
    assert net.encoder.encoder.conv1.in_channels == 6
    assert net.head.net[-1].out_channels == 12  # Monodepth2 predicts two poses, uses the first


def test_decoder_and_posecnn_raw_shapes():
    dec = PoseDecoder([64, 64, 128, 256, 512], num_input_features=2, num_frames_to_predict_for=3)
    axisangle, translation = dec([torch.rand(2, 512, 2, 3), torch.rand(2, 512, 2, 3)])
    assert axisangle.shape == (2, 3, 1, 3) and translation.shape == (2, 3, 1, 3)
    with pytest.raises(ValueError, match="expects 2 feature maps, got 1"):
        dec([torch.rand(2, 512, 2, 3)])
    cnn = PoseCNN(num_input_frames=3)
    axisangle, _ = cnn(torch.rand(2, 9, 64, 64))
    assert axisangle.shape == (2, 2, 1, 3)
    assert [c.out_channels for c in cnn.net] == [16, 32, 64, 128, 256, 256, 256]
    assert [c.kernel_size[0] for c in cnn.net] == [7, 5, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("kind", ["separate", "posecnn", "shared"])
def test_transforms_order_pairs_in_time_and_invert_past_sources(kind):
    # The one place that pairs frames: [source, target] for a past source, whose motion is
    # inverted; [target, source] for a future one; the shared kind reads the depth encoder.
    torch.manual_seed(0)
    net = PoseNet(kind).eval()
    encoder = ResnetEncoder(18, pretrained=False).eval()
    encode = encoder if kind == "shared" else None
    target, past, future = (torch.rand(2, 3, 64, 96) for _ in range(3))
    with torch.no_grad():
        T = net.transforms(target, [past, future], [-1, 1], encode=encode)
        want_past = pose_vec_to_mat(*net(past, target, encode=encode), invert=True)
        want_future = pose_vec_to_mat(*net(target, future, encode=encode))
    assert T.shape == (2, 2, 4, 4)
    torch.testing.assert_close(T[:, 0], want_past, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(T[:, 1], want_future, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"transforms: 1 sources for offsets \[0\]"):
        net.transforms(target, [past], [0])
