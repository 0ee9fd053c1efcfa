"""``mono predict``: inputs (image, folder, GIF, video), output files and values, a trained run."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mono.checkpoint import LoadedNetworks
from mono.cli import main
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2
from mono.predict import (
    VideoBackendError,
    list_images,
    predict,
    read_frames,
    to_network_input,
)
from mono.types import DepthOutput

H, W = 64, 192
STREET = Path(__file__).resolve().parents[1] / "assets" / "street.jpg"


class RampDepth(nn.Module):
    """Sigmoid disparity rising linearly from 0 (top row) to 1 (bottom row), any batch."""

    def forward(self, image):
        b, _, h, w = image.shape
        ramp = torch.linspace(0, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
        return DepthOutput(disps=[ramp])


def _write_images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"img{i}.png")
    return folder


def test_read_frames_of_a_folder_an_image_and_a_gif(tmp_path):
    folder = _write_images(tmp_path / "f", [(10, 12), (8, 9), (10, 12)])
    Image.new("RGB", (5, 4)).save(folder / "img0.jpg")  # same stem as img0.png
    (folder / "notes.txt").write_text("not an image")
    assert [p.name for p in list_images(folder)] == ["img0.jpg", "img0.png", "img1.png", "img2.png"]
    names = [name for name, _ in read_frames(folder)]
    assert names == ["img0_jpg", "img0_png", "img1", "img2"]
    (name, img), *_ = read_frames(folder / "img1.png")
    assert (name, img.size, img.mode) == ("img1", (9, 8), "RGB")
    frames = [Image.new("RGB", (6, 5), c) for c in ("red", "green", "blue")]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    gif = list(read_frames(tmp_path / "clip.gif"))
    assert [n for n, _ in gif] == ["clip_000000", "clip_000001", "clip_000002"]
    assert all(f.mode == "RGB" and f.size == (6, 5) for _, f in gif)


def test_unreadable_inputs_are_named(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="input not found"):
        list(read_frames(tmp_path / "missing.jpg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        list(read_frames(tmp_path / "empty"))
    (tmp_path / "a.xyz").write_text("")
    with pytest.raises(ValueError, match="unknown input type '.xyz'"):
        list(read_frames(tmp_path / "a.xyz"))
    (tmp_path / "drive.mp4").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(VideoBackendError, match=r"needs PyAV \(`pip install av`\)"):
        list(read_frames(tmp_path / "drive.mp4"))


def test_network_input_is_lanczos_resized_rgb_in_0_1():
    img = Image.fromarray(np.arange(30 * 40 * 3, dtype=np.uint8).reshape(30, 40, 3))
    x = to_network_input([img, img], 16, 20)
    want = np.asarray(img.resize((20, 16), Image.Resampling.LANCZOS), np.float32) / 255
    assert x.shape == (2, 3, 16, 20)
    assert torch.equal(x[1].permute(1, 2, 0), torch.from_numpy(want))


@pytest.mark.parametrize("stereo", [False, True])
def test_written_values_follow_disp_to_depth(tmp_path, stereo):
    # 64 x 192 frames need no resizing, so every written value can be computed by hand.
    folder = _write_images(tmp_path / "in", [(H, W)])
    frame_ids = ["0", "-1", "1", "s"] if stereo else ["0", "-1", "1"]
    nets = LoadedNetworks(
        RampDepth(), None, H, W, min_depth=0.1, max_depth=100, frame_ids=frame_ids,
        metric_scale=5.4 if stereo else None,
    )  # fmt: skip
    (pred,) = predict(nets, folder, tmp_path / "out", ext="jpg" if stereo else "png", log=None)
    disp = np.load(pred.disp)
    ramp = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    expected = 0.01 + (10 - 0.01) * ramp  # 1 / max_depth + (1 / min_depth - 1 / max_depth) * d
    assert disp.shape == (H, W) and np.allclose(disp, expected, rtol=1e-5)
    if stereo:
        assert np.allclose(np.load(pred.depth), 5.4 / expected, rtol=1e-5)
        assert pred.picture.name == "img0_disp.jpg"
        return
    assert pred.depth is None and not (tmp_path / "out" / "img0_depth.npy").exists()
    rgb = np.asarray(Image.open(pred.picture))
    assert rgb.shape == (H, W, 3)
    # magma from the minimum (black-violet, (0, 0, 4)) to the 95th percentile (pale yellow)
    assert tuple(rgb[0, 0]) == (0, 0, 4)
    assert tuple(rgb[-1, 0]) == tuple(rgb[-3, 5]) == (252, 253, 191)  # above the 95th pct
    assert rgb[H // 2].sum() < rgb[3 * H // 4].sum()


def test_batching_and_resizing_back_to_each_frame(tmp_path):
    torch.manual_seed(0)
    folder = _write_images(tmp_path / "in", [(40, 70), (50, 90), (40, 70)])
    nets = LoadedNetworks(DepthNet(18).eval(), None, H, W)
    batched = predict(nets, folder, tmp_path / "b3", batch_size=3, log=None)
    single = predict(nets, folder, tmp_path / "b1", batch_size=1, log=None)
    for a, b, size in zip(batched, single, [(40, 70), (50, 90), (40, 70)], strict=True):
        assert np.load(a.disp).shape == size
        assert Image.open(a.picture).size == size[::-1]
        assert np.allclose(np.load(a.disp), np.load(b.disp), atol=1e-6)


def test_predict_from_a_monodepth2_folder_through_the_cli(tmp_path, capsys):
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), H, W, use_stereo=True)
    _write_images(tmp_path / "in", [(30, 50), (30, 50)])
    main(
        ["predict", str(tmp_path / "in"), "--weights", str(tmp_path / "w")]
        + ["--out", str(tmp_path / "o"), "--batch-size", "2"]
    )
    out = capsys.readouterr().out
    assert "2 frame(s) done" in out and "metric depth for 2 frame(s)" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        f"img{i}_{kind}" for i in (0, 1) for kind in ("depth.npy", "disp.npy", "disp.png")
    ]
    with pytest.raises(SystemExit, match="a Monodepth2 folder needs encoder.pth and depth.pth"):
        main(["predict", str(tmp_path / "in"), "--weights", str(tmp_path / "in")])


# ----------------------------------------------------------------------------- trained run
TRAIN_STEPS = 80  # the road's disparity gradient appears after ~50 steps of batch 2


@pytest.fixture(scope="module")
def synthetic_ckpt(synthetic_root, tmp_path_factory):
    """A Monodepth2-style model trained briefly on the synthetic drives (about a minute)."""
    import pytorch_lightning as pl

    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    pl.seed_everything(0, verbose=False)
    dm = KittiDataModule(
        root=str(synthetic_root), split="splits", height=H, width=W, intrinsics="calib",
        batch_size=2, num_workers=0,
    )  # fmt: skip
    model = DepthModel(height=H, width=W, pretrained=False, lr=2e-4)
    trainer = pl.Trainer(
        max_steps=TRAIN_STEPS, limit_val_batches=0, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    path = tmp_path_factory.mktemp("synthetic_run") / "last.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.mark.slow
def test_street_picture_is_near_at_the_bottom_and_far_at_the_horizon(synthetic_ckpt, tmp_path):
    assert STREET.is_file() and (STREET.parent / "ATTRIBUTION.txt").is_file()
    main(["predict", str(STREET), "--ckpt", str(synthetic_ckpt), "--out", str(tmp_path)])
    disp = np.load(tmp_path / "street_disp.npy")
    assert disp.shape == (235, 638)  # the photograph's own size
    rows = disp.shape[0]
    bottom = disp[-rows // 8 :].mean()  # the road just in front of the camera
    horizon = disp[int(0.35 * rows) : int(0.45 * rows)].mean()  # the sea line is at ~0.42
    assert bottom > 1.5 * horizon, (bottom, horizon)
    assert Image.open(tmp_path / "street_disp.png").size == (638, 235)


# ----------------------------------------------------------------------------- bad inputs
class NanDepth(nn.Module):
    """NaN disparity for images whose mean is above 0.5, the ramp otherwise."""

    def forward(self, image):
        ramp = RampDepth()(image).disps[0].clone()
        ramp[image.mean(dim=(1, 2, 3)) > 0.5] = float("nan")
        return DepthOutput(disps=[ramp])


def test_unreadable_files_of_a_folder_are_skipped_and_reported(tmp_path, capsys):
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), H, W)
    folder = _write_images(tmp_path / "in", [(30, 50), (30, 50)])
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit) as info:
        main(
            ["predict", str(folder), "--weights", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
        )
    assert (
        info.value.code == "mono predict: 1 input(s) skipped (listed above as 'predict: skipped')"
    )
    out = capsys.readouterr().out.splitlines()
    broken = folder / "broken.png"
    assert out[0] == (
        f"predict: skipped {broken} cannot be decoded (UnidentifiedImageError: cannot identify "
        f"image file '{broken}')"
    )
    assert out[-1] == f"wrote disparity (up to scale) for 2 frame(s) to {tmp_path / 'o'}"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        f"img{i}_disp.{kind}" for i in (0, 1) for kind in ("npy", "png")
    ]


def test_a_nan_prediction_writes_nothing_for_its_frame(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (W, H), (200, 200, 200)).save(folder / "bright.png")
    Image.new("RGB", (W, H), (10, 10, 10)).save(folder / "dark.png")
    nets = LoadedNetworks(NanDepth(), None, H, W, metric_scale=1.0)
    skipped: list[str] = []
    preds = predict(nets, folder, tmp_path / "out", batch_size=2, log=None, skipped=skipped)
    assert [p.name for p in preds] == ["dark"]
    assert skipped == [
        f"frame bright: the network predicted {H * W} non-finite disparities of {H * W}; nothing "
        "written for this frame"
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "dark_depth.npy", "dark_disp.npy", "dark_disp.png"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="frame bright: the network predicted"):
        predict(nets, folder, tmp_path / "out2", batch_size=2, log=None)
