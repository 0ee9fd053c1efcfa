"""A Monodepth2-format export keeps the depth range and metric scale the network was trained with.

Monodepth2 itself always trains with depths 0.1 .. 100 m (and stereo with its 0.1 m baseline
convention), so its ``encoder.pth`` only stores height, width and use_stereo. A mono model
trained with another range (the main job uses min_depth 1 m) must carry its range along, or
the re-imported network predicts other depths.
"""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mono.checkpoint import init_model_from_monodepth2, load_networks
from mono.cli import main
from mono.module import DepthModel
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2

H, W = 64, 192


@pytest.fixture
def ckpt(tmp_path):
    """A mono+stereo model with the main job's range (1 .. 100 m) and the calibrated baseline."""
    torch.manual_seed(0)
    model = DepthModel(
        H, W, pretrained=False, frame_ids=["0", "-1", "1", "s"], stereo_baseline="calib",
        min_depth=1.0, max_depth=80.0,
    )  # fmt: skip
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def test_exported_folder_predicts_what_the_checkpoint_predicts(ckpt, tmp_path):
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "w"), "--format", "monodepth2"])
    encoder = torch.load(tmp_path / "w" / "encoder.pth", weights_only=True)
    assert (encoder["min_depth"], encoder["max_depth"], encoder["metric_scale"]) == (1.0, 80.0, 1.0)
    folder = load_networks(tmp_path / "w")
    assert (folder.min_depth, folder.max_depth, folder.metric_scale) == (1.0, 80.0, 1.0)

    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 120, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in" / "a.png")
    for source, name in (("--ckpt", ckpt), ("--weights", tmp_path / "w")):
        main(["predict", str(tmp_path / "in"), source, str(name)]
             + ["--out", str(tmp_path / source[2:])])  # fmt: skip
    for kind in ("disp", "depth"):
        from_ckpt = np.load(tmp_path / "ckpt" / f"a_{kind}.npy")
        from_folder = np.load(tmp_path / "weights" / f"a_{kind}.npy")
        assert np.array_equal(from_ckpt, from_folder), kind


def test_monocular_export_records_that_it_has_no_scale(tmp_path):
    torch.manual_seed(0)
    model = DepthModel(H, W, pretrained=False, min_depth=0.5)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    main(["export", "--ckpt", str(path), "--out", str(tmp_path / "w"), "--format", "monodepth2"])
    nets = load_networks(tmp_path / "w")
    assert (nets.min_depth, nets.max_depth, nets.metric_scale) == (0.5, 100.0, None)


def test_a_reference_folder_keeps_monodepth2s_range_and_convention(tmp_path):
    save_monodepth2(tmp_path, DepthNet(18), H, W, use_stereo=True)  # as the reference writes
    assert "min_depth" not in torch.load(tmp_path / "encoder.pth", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nets = load_networks(tmp_path)
    assert (nets.min_depth, nets.max_depth, nets.metric_scale) == (0.1, 100.0, 5.4)


def test_fine_tuning_warns_when_the_range_differs(tmp_path):
    save_monodepth2(tmp_path / "ref", DepthNet(18), H, W)  # no range: the reference's 0.1 .. 100
    model = DepthModel(H, W, pretrained=False, min_depth=1.0, frame_ids=["0", "s"])  # no pose
    with pytest.warns(UserWarning) as record:
        init_model_from_monodepth2(model, tmp_path / "ref")
    assert str(record[0].message) == (
        f"{tmp_path / 'ref'} does not record its depth range, so it is Monodepth2's 0.1 .. 100 m, "
        "but model.min_depth/max_depth are 1 .. 100 m: the loaded network predicts other "
        "depths until fine-tuning adapts it"
    )
    own = {"min_depth": 1.0, "max_depth": 100.0, "metric_scale": None}
    save_monodepth2(tmp_path / "own", DepthNet(18), H, W, settings=own)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same range: nothing to say
        init_model_from_monodepth2(model, tmp_path / "own")
