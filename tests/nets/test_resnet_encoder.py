"""ResnetEncoder: feature shapes, input normalisation, multi-image conv1, pretrained loading."""

import urllib.error

import pytest
import torch
import torchvision

from mono.nets import ResnetEncoder


def test_feature_shapes_resnet18():
    enc = ResnetEncoder(18)
    feats = enc(torch.rand(2, 3, 64, 96))
    assert enc.num_ch_enc == [64, 64, 128, 256, 512]
    expected = [(64, 32, 48), (64, 16, 24), (128, 8, 12), (256, 4, 6), (512, 2, 3)]
    assert [tuple(f.shape) for f in feats] == [(2, *e) for e in expected]


@pytest.mark.parametrize(("num_layers", "deep"), [(18, 512), (50, 2048)])
def test_construction_channels(num_layers, deep):
    enc = ResnetEncoder(num_layers)
    assert enc.num_ch_enc[-1] == deep
    assert enc.encoder.layer4[-1].bn2.num_features * (4 if num_layers == 50 else 1) == deep


def test_input_is_normalised_with_monodepth2_constants():
    # (x - 0.45) / 0.225 maps 0.45 to 0 and 0.675 to 1. conv1 has no bias, so grey 0.45 gives an
    # exactly zero first feature map, and 0.675 gives the response to an all-ones input.
    enc = ResnetEncoder(18).eval()
    f0 = enc(torch.full((1, 3, 32, 32), 0.45))[0]
    assert torch.equal(f0, torch.zeros_like(f0))
    net = enc.encoder
    expected = net.relu(net.bn1(net.conv1(torch.ones(1, 3, 32, 32))))
    assert torch.allclose(enc(torch.full((1, 3, 32, 32), 0.675))[0], expected, atol=1e-5)


def test_classifier_is_state_not_parameter():
    enc = ResnetEncoder(18)
    names = {n for n, _ in enc.named_parameters()}
    assert "encoder.fc.weight" not in names
    assert enc.state_dict()["encoder.fc.weight"].shape == (1000, 512)


def test_invalid_num_layers():
    with pytest.raises(ValueError, match=r"num_layers=19 .*\(18, 34, 50, 101, 152\)"):
        ResnetEncoder(19)


def test_multi_image_conv1_has_six_channels():
    enc = ResnetEncoder(18, num_input_images=2)
    assert enc.encoder.conv1.in_channels == 6
    feats = enc(torch.rand(1, 6, 64, 64))
    assert feats[-1].shape == (1, 512, 2, 2)


def _fake_imagenet(monkeypatch):
    fake = torchvision.models.resnet18(weights=None).state_dict()
    fake["conv1.weight"] = torch.randn_like(fake["conv1.weight"])
    monkeypatch.setattr(
        torchvision.models._api, "load_state_dict_from_url", lambda url, **kw: dict(fake)
    )
    return fake


def test_pretrained_multi_image_repeats_conv1_over_frames(monkeypatch):
    fake = _fake_imagenet(monkeypatch)
    single = ResnetEncoder(18, pretrained=True).eval()
    pair = ResnetEncoder(18, pretrained=True, num_input_images=2).eval()
    w = fake["conv1.weight"]
    assert torch.equal(single.encoder.conv1.weight, w)
    assert torch.allclose(pair.encoder.conv1.weight, torch.cat([w, w], 1) / 2)
    # Two identical frames give the single-image response.
    x = torch.rand(1, 3, 32, 32)
    out_single = single(x)[-1]
    out_pair = pair(torch.cat([x, x], 1))[-1]
    assert torch.allclose(out_single, out_pair, rtol=1e-4, atol=1e-5)


def test_pretrained_without_internet_explains(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="pretrained=False.*torch hub cache"):
        ResnetEncoder(18, pretrained=True)
