"""Eigen et al. (2014) coarse/fine network: any input size, range, gradients."""

import pytest
import torch

from mono.nets import EigenCoarseFine


@pytest.mark.parametrize(("h", "w"), [(32, 64), (40, 52)])
def test_any_size_full_resolution_disparity(h, w):
    net = EigenCoarseFine(h, w)
    out = net(torch.rand(2, 3, h, w))
    assert len(out.disps) == 1
    assert out.disps[0].shape == (2, 1, h, w)
    assert out.disps[0].min() > 0 and out.disps[0].max() < 1


def test_other_size_than_constructed():
    net = EigenCoarseFine(32, 64).eval()
    assert net(torch.rand(1, 3, 50, 70)).disps[0].shape == (1, 1, 50, 70)


def test_coarse_map_is_quarter_resolution():
    net = EigenCoarseFine(64, 128)
    assert net.coarse_size == (16, 32)
    assert net.coarse_fc[-1].out_features == 16 * 32


def test_every_parameter_receives_gradient():
    torch.manual_seed(0)
    net = EigenCoarseFine(40, 52, dropout=0.0)
    net(torch.rand(2, 3, 40, 52)).disps[0].mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_too_small():
    with pytest.raises(ValueError, match="height=2, width=64"):
        EigenCoarseFine(2, 64)
