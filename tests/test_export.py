"""Export round trips (pt, TorchScript, ONNX, Monodepth2 out and in) and their clear errors."""

import json
import warnings

import numpy as np
import pytest
import torch

from mono.checkpoint import CheckpointError, init_model_from_monodepth2, load_networks
from mono.cli import main
from mono.export import (
    export_networks,
    load_encoder,
    load_pt,
)
from mono.nets import DepthNet, PoseNet, ResnetEncoder
from mono.nets.monodepth2_format import save_monodepth2

H, W = 64, 192
TOL = 1e-4  # the bound on |ONNX/TorchScript - PyTorch| disparity


def _nets_checkpoint(path, seed=0, frame_ids=("0", "-1", "1")):
    """A mono checkpoint as Lightning writes it (state_dict + hyper_parameters), untrained."""
    torch.manual_seed(seed)
    depth, pose = DepthNet(18), PoseNet("separate", 18)
    state = {f"depth.{k}": v for k, v in depth.state_dict().items()}
    state.update({f"pose.{k}": v for k, v in pose.state_dict().items()})
    hp = {"height": H, "width": W, "frame_ids": list(frame_ids), "num_layers": 18}
    torch.save({"state_dict": state, "hyper_parameters": hp}, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _nets_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt")


@pytest.fixture(scope="module")
def nets(ckpt):
    return load_networks(ckpt)


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(3, 3, H, W)


def _disp(nets, x):
    with torch.no_grad():
        return nets.depth(x).disps[0]


def test_pt_round_trip_of_every_part(nets, images, tmp_path):
    written = export_networks(nets, tmp_path, "pt")
    assert [p.name for p in written] == ["encoder.pt", "depth.pt", "pose.pt"]
    depth, meta = load_pt(tmp_path / "depth.pt")
    assert (meta["height"], meta["width"], meta["min_depth"], meta["max_depth"]) == (H, W, 0.1, 100)
    with torch.no_grad():
        assert torch.equal(depth(images).disps[0], _disp(nets, images))
        pose, meta = load_pt(tmp_path / "pose.pt")
        a, b = images, images.flip(0)
        for got, want in zip(pose(a, b), nets.pose(a, b), strict=True):
            assert torch.equal(got, want)
    assert meta["kind"] == "separate"


def test_encoder_pt_is_a_backbone_with_its_input_contract(nets, images, tmp_path):
    export_networks(nets, tmp_path, "pt", part="encoder")
    encoder = load_encoder(tmp_path / "encoder.pt")
    assert isinstance(encoder, ResnetEncoder) and encoder.num_ch_enc == [64, 64, 128, 256, 512]
    _, meta = load_pt(tmp_path / "encoder.pt")
    assert (meta["input_mean"], meta["input_std"], meta["height"], meta["width"]) == (
        0.45,
        0.225,
        H,
        W,
    )
    with torch.no_grad():
        for got, want in zip(encoder(images), nets.depth.encoder(images), strict=True):
            assert torch.equal(got, want)
    info = json.loads((tmp_path / "encoder.pt.json").read_text())
    assert info["outputs"][4]["shape"] == ["batch", 512, H // 32, W // 32]
    export_networks(nets, tmp_path, "pt", part="depth")
    with pytest.raises(CheckpointError, match="holds the depth network, not the encoder"):
        load_encoder(tmp_path / "depth.pt")


def test_torchscript_matches_pytorch_at_batch_1_and_3(nets, images, tmp_path):
    export_networks(nets, tmp_path, "torchscript", part="depth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        scripted = torch.jit.load(str(tmp_path / "depth.torchscript.pt"))
    with torch.no_grad():
        for batch in (images[:1], images):
            assert (scripted(batch) - _disp(nets, batch)).abs().max() < TOL
        with pytest.raises(Exception, match="input size 96x192 does not match .* 64x192"):
            scripted(torch.rand(1, 3, 96, W))


def test_onnx_matches_pytorch_with_a_dynamic_batch_axis(nets, images, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    export_networks(nets, tmp_path, "onnx", part="depth")
    model = onnx.load(str(tmp_path / "depth.onnx"))
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    session = ort.InferenceSession(str(tmp_path / "depth.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_inputs()[0].shape == ["batch", 3, H, W]
    for batch in (images[:1], images):
        (got,) = session.run(None, {"image": batch.numpy()})
        assert got.shape == (batch.shape[0], 1, H, W)
        assert np.abs(got - _disp(nets, batch).numpy()).max() < TOL
    with pytest.raises(Exception, match="Got: 96 Expected: 64"):
        session.run(None, {"image": np.zeros((1, 3, 96, W), np.float32)})
    info = json.loads((tmp_path / "depth.onnx.json").read_text())
    assert info["inputs"][0]["shape"] == ["batch", 3, H, W] and info["opset"] == 17
    assert info["outputs"][0]["name"] == "disparity" and info["size_bytes"] > 1e6


def test_pose_exports_match_pytorch(nets, images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    export_networks(nets, tmp_path, "onnx", part="pose")
    export_networks(nets, tmp_path, "torchscript", part="pose")
    a, b = images, images.flip(0)
    with torch.no_grad():
        want = [t.numpy() for t in nets.pose(a, b)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.load(str(tmp_path / "pose.torchscript.pt"))
        traced = [t.numpy() for t in scripted(a, b)]
    session = ort.InferenceSession(str(tmp_path / "pose.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"frame_a": a.numpy(), "frame_b": b.numpy()})
    for got in (traced, onnx_out):
        for g, w in zip(got, want, strict=True):
            assert g.shape == (3, 3) and np.abs(g - w).max() < 1e-6


def test_monodepth2_out_is_read_back_identically(ckpt, nets, images, tmp_path):
    # through the command line, as a user would
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path), "--format", "monodepth2"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "depth.pth",
        "encoder.pth",
        "monodepth2.json",
        "pose.pth",
        "pose_encoder.pth",
    ]
    encoder = torch.load(tmp_path / "encoder.pth", weights_only=True)
    assert (encoder["height"], encoder["width"], encoder["use_stereo"]) == (H, W, False)
    assert "encoder.layer4.1.bn2.running_var" in encoder
    back = load_networks(tmp_path)
    assert (back.height, back.width) == (H, W)
    assert torch.equal(_disp(back, images), _disp(nets, images))
    with torch.no_grad():
        for got, want in zip(back.pose(images, images), nets.pose(images, images), strict=True):
            assert torch.equal(got, want)


def test_monodepth2_in_initialises_a_model_for_fine_tuning(images, tmp_path):
    from mono.module import DepthModel

    torch.manual_seed(3)
    depth, pose = DepthNet(18).eval(), PoseNet("separate").eval()
    save_monodepth2(tmp_path, depth, H, W, pose_net=pose)
    model = DepthModel(height=H, width=W, pretrained=False).eval()
    assert init_model_from_monodepth2(model, tmp_path) == ["depth", "pose"]
    with torch.no_grad():
        assert torch.equal(model(images).disps[0], depth(images).disps[0])
        assert torch.equal(model.pose(images, images)[1], pose(images, images)[1])
    # and the folder exports like a checkpoint does
    main(["export", "--weights", str(tmp_path), "--out", str(tmp_path / "x"), "--format", "pt"])
    assert torch.equal(_disp(load_networks(tmp_path), images), depth(images).disps[0].detach())


def test_wrong_architecture_names_the_keys(tmp_path):
    from mono.module import DepthModel

    save_monodepth2(tmp_path, DepthNet(34), H, W)  # ResNet-34: three blocks in layer1
    model = DepthModel(height=H, width=W, pretrained=False, num_layers=18)
    with pytest.raises(ValueError, match=r"encoder.pth: unexpected keys \[encoder.layer1.2"):
        init_model_from_monodepth2(model, tmp_path)
    # a ResNet-50 decoder next to a ResNet-18 encoder: shapes named with both sizes
    save_monodepth2(tmp_path / "mixed", DepthNet(18), H, W)
    torch.save(DepthNet(50).decoder.state_dict(), tmp_path / "mixed" / "depth.pth")
    with pytest.raises(SystemExit, match=r"file \(256, 2048, 3, 3\) vs network \(256, 512, 3, 3\)"):
        main(
            [
                "export",
                "--weights",
                str(tmp_path / "mixed"),
                "--out",
                str(tmp_path / "o"),
                "--format",
                "pt",
            ]
        )


def test_mismatched_input_size_is_named(tmp_path):
    from mono.module import DepthModel

    net = DepthNet(18)
    save_monodepth2(tmp_path, net, 192, 640)
    model = DepthModel(height=H, width=W, pretrained=False)
    with pytest.raises(
        ValueError, match="trained at height x width 192 x 640 .* model is 64 x 192"
    ):
        init_model_from_monodepth2(model, tmp_path)
    with pytest.warns(UserWarning, match="no pose.pth"):
        assert init_model_from_monodepth2(model, tmp_path, allow_size_change=True) == ["depth"]


def test_corrupt_files_give_checkpoint_errors(ckpt, tmp_path):
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(ckpt.read_bytes()[:5000])
    with pytest.raises(SystemExit, match="corrupt or truncated"):
        main(["export", "--ckpt", str(bad), "--out", str(tmp_path / "o"), "--format", "pt"])
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="bad.pt is corrupt"):
        load_pt(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a mono pt export"):
        load_encoder(tmp_path / "other.pt")


@pytest.mark.slow
def test_fine_tune_and_validate_from_monodepth2_weights(synthetic_root, tmp_path):
    import pytorch_lightning as pl

    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    torch.manual_seed(4)
    save_monodepth2(tmp_path, DepthNet(18), H, W, pose_net=PoseNet("separate"))
    model = DepthModel(height=H, width=W, pretrained=False)
    init_model_from_monodepth2(model, tmp_path)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    dm = KittiDataModule(
        root=str(synthetic_root), split="splits", height=H, width=W, intrinsics="calib",
        batch_size=2, num_workers=0,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_steps=2, limit_val_batches=2, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    (metrics,) = trainer.validate(model, datamodule=dm, verbose=False)
    assert 0 < metrics["val/abs_rel"] < 10
    trainer.fit(model, datamodule=dm)
    moved = [k for k, v in model.state_dict().items() if not torch.equal(v, start[k])]
    assert any(k.startswith("depth.encoder.") for k in moved)
    assert any(k.startswith("pose.head.") for k in moved)
