"""The depth network owns what its disparity means: range and metric scale travel with it
from the LightningModule through checkpoints and exports, and the supervised terms' ground
truth range is an option of its own."""

import pytest
import torch

from mono.checkpoint import load_networks
from mono.export import export_networks, load_pt
from mono.loss_terms import TermInputs, evaluate_terms
from mono.module import DepthModel
from mono.nets import DepthNet, EigenCoarseFine, build_depth_net
from mono.types import Views

H, W = 64, 64


def test_depth_is_the_range_mapping_of_the_finest_disparity():
    net = DepthNet(18, min_depth=2.0, max_depth=50.0).eval()
    image = torch.rand(1, 3, H, W)
    with torch.no_grad():
        disp = net(image).disps[0]
        depth = net.predict_depth(image)
    # disparity 0 -> max_depth, 1 -> min_depth, linear in 1 / depth between them
    torch.testing.assert_close(1 / depth, 1 / 50 + (1 / 2 - 1 / 50) * disp)
    assert net.to_depth(torch.zeros(1)).item() == pytest.approx(50.0)
    assert net.to_depth(torch.ones(1)).item() == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["resnet", "eigen"])
def test_settings_rebuild_the_same_meaning(name):
    net = (
        DepthNet(18, min_depth=1.0, max_depth=80.0, metric_scale=5.4)
        if name == "resnet"
        else EigenCoarseFine(H, W, min_depth=1.0, max_depth=80.0, metric_scale=5.4)
    )
    again = build_depth_net(name, **net.settings())
    assert (again.min_depth, again.max_depth, again.metric_scale) == (1.0, 80.0, 5.4)


def test_bad_range_is_named():
    with pytest.raises(ValueError, match="need 0 < min_depth < max_depth"):
        DepthNet(18, min_depth=10.0, max_depth=1.0)
    with pytest.raises(ValueError, match=r"model.min_depth=0, model.max_depth=100"):
        DepthModel(H, W, pretrained=False, min_depth=0)
    with pytest.raises(ValueError, match=r"model.gt_depth_range=\[5, 1\]"):
        DepthModel(H, W, pretrained=False, gt_depth_range=(5, 1))


def test_module_checkpoint_and_export_read_the_networks_meaning(tmp_path):
    model = DepthModel(
        H, W, pretrained=False, min_depth=1.0, max_depth=80.0,
        frame_ids=["0", "s"], stereo_baseline=0.54,
    )  # fmt: skip
    assert (model.depth.min_depth, model.depth.max_depth) == (1.0, 80.0)
    assert model.metric_scale == model.depth.metric_scale == pytest.approx(1.0)
    ckpt = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    nets = load_networks(ckpt)
    assert (nets.depth.min_depth, nets.depth.max_depth, nets.depth.metric_scale) == (
        1.0, 80.0, pytest.approx(1.0),
    )  # fmt: skip
    assert (nets.min_depth, nets.max_depth) == (1.0, 80.0)
    files = export_networks(nets, tmp_path / "out", "pt", part="depth")
    net, _ = load_pt(files[0])
    assert (net.min_depth, net.max_depth, net.metric_scale) == (1.0, 80.0, pytest.approx(1.0))


def test_supervised_terms_count_ground_truth_only_inside_gt_depth_range():
    """Half the ground truth lies beyond the range: the loss equals the loss on the other half
    alone, whatever the network's own min/max depth."""
    model = DepthModel(
        H, W, pretrained=False, training_mode="supervised", supervised_losses={"l1": 1.0},
        min_depth=0.1, max_depth=100.0, gt_depth_range=(0.5, 30.0),
    )  # fmt: skip
    disp = torch.full((1, 1, H, W), 0.05)
    depth = model.depth.to_depth(disp)
    gt = torch.full((1, 1, H, W), 10.0)
    gt[..., : H // 2, :] = 60.0  # beyond gt_depth_range: ignored
    views = Views(
        color=torch.zeros(1, 1, 3, H, W), color_aug=torch.zeros(1, 1, 3, H, W),
        K=torch.eye(3)[None], T_stereo=torch.eye(4)[None], depth_gt=gt,
        sizes=torch.tensor([[H, W]]),
    )  # fmt: skip
    terms = evaluate_terms(
        model.terms, TermInputs(views, [disp], model.depth, gt_depth_range=(0.5, 30.0))
    )
    torch.testing.assert_close(terms.values["sup_l1"], (depth - 10.0).abs().mean())
    torch.testing.assert_close(terms.loss, terms.values["sup_l1"])
