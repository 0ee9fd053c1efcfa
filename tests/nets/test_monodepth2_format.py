"""Monodepth2 weight files: reference key names, round trips, clear errors."""

import pytest
import torch

from mono.nets import DepthNet, PoseNet
from mono.nets.monodepth2_format import (
    depth_net_from_monodepth2,
    depth_net_to_monodepth2,
    infer_num_layers,
    load_monodepth2,
    pose_net_from_monodepth2,
    pose_net_to_monodepth2,
    save_monodepth2,
)
from mono.nets.resnet_encoder import ResnetEncoder

# Key names read off nianticlabs/monodepth2 (networks/*.py, trainer.save_model) state dicts.
REF_ENCODER_KEYS = [
    "encoder.conv1.weight",
    "encoder.bn1.weight",
    "encoder.bn1.running_mean",
    "encoder.layer1.0.conv1.weight",
    "encoder.layer4.1.bn2.running_var",
    "encoder.fc.weight",
    "encoder.fc.bias",
]
REF_DEPTH_KEYS = {  # upconv (4,0) .. (0,1) are decoder.0 .. decoder.9; dispconv 0..3 follow
    "decoder.0.conv.conv.weight": (256, 512, 3, 3),
    "decoder.1.conv.conv.weight": (256, 512, 3, 3),
    "decoder.9.conv.conv.bias": (16,),
    "decoder.10.conv.weight": (1, 16, 3, 3),
    "decoder.13.conv.weight": (1, 128, 3, 3),
}
REF_POSE_KEYS = [f"net.{i}.{p}" for i in range(4) for p in ("weight", "bias")]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DepthNet(18).eval()


def test_depth_keys_match_reference(net):
    enc, dep = depth_net_to_monodepth2(net, 192, 640, use_stereo=False)
    assert (enc["height"], enc["width"], enc["use_stereo"]) == (192, 640, False)
    for key in REF_ENCODER_KEYS:
        assert key in enc, key
    assert list(dep)[0] == "decoder.0.conv.conv.weight"
    assert len(dep) == 2 * 14
    for key, shape in REF_DEPTH_KEYS.items():
        assert tuple(dep[key].shape) == shape, key


def test_pose_keys_match_reference():
    pose_enc, pose = pose_net_to_monodepth2(PoseNet("separate"))
    assert pose_enc["encoder.conv1.weight"].shape == (64, 6, 7, 7)
    assert "encoder.fc.bias" in pose_enc
    assert list(pose) == REF_POSE_KEYS
    assert pose["net.1.weight"].shape == (256, 256, 3, 3)
    assert pose["net.3.weight"].shape == (12, 256, 1, 1)
    assert pose_net_to_monodepth2(PoseNet("shared"))[1]["net.1.weight"].shape == (256, 512, 3, 3)
    cnn_enc, cnn = pose_net_to_monodepth2(PoseNet("posecnn"))
    assert cnn_enc is None
    assert cnn["net.0.weight"].shape == (16, 6, 7, 7) and cnn["pose_conv.weight"].shape[0] == 6


def test_depth_round_trip_identical_outputs(net):
    x = torch.rand(1, 3, 64, 64)
    loaded = depth_net_from_monodepth2(*depth_net_to_monodepth2(net, 64, 64)).eval()
    with torch.no_grad():
        for a, b in zip(net(x).disps, loaded(x).disps, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["separate", "shared", "posecnn"])
def test_pose_round_trip_identical_outputs(kind):
    torch.manual_seed(1)
    pose = PoseNet(kind).eval()
    loaded = pose_net_from_monodepth2(*pose_net_to_monodepth2(pose)).eval()
    assert loaded.kind == kind
    a, b = torch.rand(2, 1, 3, 64, 64)
    feats = [torch.rand(1, 512, 2, 2), torch.rand(1, 512, 2, 2)] if kind == "shared" else [None] * 2
    with torch.no_grad():
        for u, v in zip(pose(a, b, *feats), loaded(a, b, *feats), strict=True):
            assert torch.equal(u, v)


def test_folder_round_trip(net, tmp_path):
    pose = PoseNet("separate").eval()
    save_monodepth2(tmp_path, net, 64, 96, pose_net=pose)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "depth.pth",
        "encoder.pth",
        "pose.pth",
        "pose_encoder.pth",
    ]
    depth, pose_loaded, meta = load_monodepth2(tmp_path)
    assert meta == {"height": 64, "width": 96, "use_stereo": False}
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(net(x).disps[0], depth.eval()(x).disps[0])
        assert torch.equal(pose(x, x)[1], pose_loaded.eval()(x, x)[1])


def test_infer_num_layers_resnet50():
    enc50 = {k: v for k, v in ResnetEncoder(50).state_dict().items()}
    assert infer_num_layers(enc50) == 50
    assert infer_num_layers(ResnetEncoder(18).state_dict()) == 18
    with pytest.raises(ValueError, match="encoder.pth: cannot infer"):
        infer_num_layers({"conv1.weight": torch.zeros(1)})


def test_resnet50_weights_into_resnet18_is_clear_error(net):
    enc50 = ResnetEncoder(50).state_dict()
    _, dep = depth_net_to_monodepth2(net, 64, 64)
    with pytest.raises(ValueError, match=r"^encoder.pth: unexpected keys \[") as err:
        depth_net_from_monodepth2(enc50, dep, num_layers=18)
    assert "encoder.layer1.0.conv3.weight" in str(err.value)  # a bottleneck-only key
    assert "shape mismatches" in str(err.value)


def test_missing_key_and_bad_shape_are_named(net):
    enc, dep = depth_net_to_monodepth2(net, 64, 64)
    del dep["decoder.13.conv.bias"]
    dep["decoder.0.conv.conv.bias"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        depth_net_from_monodepth2(enc, dep)
    message = str(err.value)
    assert message.startswith("depth.pth: missing keys [decoder.13.conv.bias]")
    assert "decoder.0.conv.conv.bias (file (3,) vs network (256,))" in message


def test_missing_batchnorm_counters_are_tolerated(net):
    enc, dep = depth_net_to_monodepth2(net, 64, 64)
    enc = {k: v for k, v in enc.items() if not k.endswith("num_batches_tracked")}
    depth_net_from_monodepth2(enc, dep)
