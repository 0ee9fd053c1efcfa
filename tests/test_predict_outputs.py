"""`mono predict` outputs to use: point clouds (PLY), a side-by-side depth video, flip blending."""

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mono.checkpoint import LoadedNetworks
from mono.cli import main
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2
from mono.point_cloud import CameraIntrinsics, choose_intrinsics, point_cloud, read_ply
from mono.predict import depth_picture, predict, read_frames
from mono.types import DepthOutput


class ConstantDisp(nn.Module):
    """Sigmoid disparity ``value`` everywhere."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, image):
        b, _, h, w = image.shape
        return DepthOutput(disps=[torch.full((b, 1, h, w), self.value)])


class HalvesDisp(nn.Module):
    """Sigmoid disparity 0.2 on the left half of whatever it is shown, 0.8 on the right half."""

    def forward(self, image):
        b, _, h, w = image.shape
        right = torch.arange(w) >= w / 2
        return DepthOutput(disps=[torch.where(right, 0.8, 0.2).expand(b, 1, h, w)])


def _scaled(sigmoid: float) -> float:
    """disp_to_depth's scaled disparity for min_depth 0.1, max_depth 100."""
    return 0.01 + (10 - 0.01) * sigmoid


def _error(*args) -> str:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert isinstance(info.value.code, str)
    return info.value.code


# ----------------------------------------------------------------------------- point clouds
def test_point_cloud_of_a_constant_depth_is_the_hand_backprojection(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "f.png")
    scale = 2.5 * _scaled(0.5)  # depth 2.5 m everywhere
    nets = LoadedNetworks(ConstantDisp(0.5), None, 6, 8, frame_ids=["0", "s"], metric_scale=scale)
    K = np.array([[0.5, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], np.float32)  # pixels: 4, 6, 4, 3
    (pred,) = predict(
        nets, tmp_path / "f.png", tmp_path / "o", log=None, intrinsics=CameraIntrinsics(K, "test")
    )
    vertices, comments = read_ply(pred.cloud)
    assert pred.cloud == tmp_path / "o" / "f.ply"
    assert vertices.dtype.names == ("x", "y", "z", "red", "green", "blue")
    assert len(vertices) == 48  # every pixel is valid
    v, u = np.mgrid[0:6, 0:8]
    np.testing.assert_allclose(vertices["z"], 2.5, rtol=1e-6)
    np.testing.assert_allclose(vertices["x"], ((u - 4) / 4 * 2.5).ravel(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(vertices["y"], ((v - 3) / 6 * 2.5).ravel(), rtol=1e-6, atol=1e-6)
    assert (vertices["x"][0], vertices["y"][0]) == pytest.approx((-2.5, -1.25))
    colours = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)
    assert np.array_equal(colours, rgb.reshape(-1, 3))
    assert comments[1] == "intrinsics fx=0.5 fy=1 cx=0.5 cy=0.5 (normalised), test"


def test_only_valid_pixels_become_points():
    depth = np.full((2, 3), 4.0, np.float32)
    depth[0, 1], depth[1, 0], depth[1, 2] = np.nan, 0.0, -1.0
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    K = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)  # f = 3 px, 2 px; c = 0
    points, colours = point_cloud(depth, rgb, K)
    assert len(points) == 3  # (0, 0), (0, 2), (1, 1)
    np.testing.assert_allclose(points, [[0, 0, 4], [8 / 3, 0, 4], [4 / 3, 2, 4]], rtol=1e-6)
    assert np.array_equal(colours, rgb[[0, 0, 1], [0, 2, 1]])


def test_intrinsics_choice_is_said():
    given = (0.6, 2.0, 0.5, 0.4)
    chosen = choose_intrinsics(given, "m.ckpt", {"intrinsics": "monodepth2"})
    assert chosen.describe() == "fx=0.6 fy=2 cx=0.5 cy=0.4 (normalised), from --fx/--fy/--cx/--cy"
    trained = choose_intrinsics((None,) * 4, "m.ckpt", {"intrinsics": "monodepth2"})
    assert trained.describe() == (
        "fx=0.58 fy=1.92 cx=0.5 cy=0.5 (normalised), the model's training intrinsics "
        "(m.ckpt was trained with Monodepth2's average KITTI K)"
    )
    default = choose_intrinsics((None,) * 4, "m.ckpt", {"intrinsics": "calib"})
    assert default.describe() == (
        "fx=0.58 fy=1.92 cx=0.5 cy=0.5 (normalised), Monodepth2's average KITTI K, a default "
        "(m.ckpt was trained with each drive's calibration (not stored); set --fx ...)"
    )
    with pytest.raises(ValueError, match=r"^--fx/--fy/--cx/--cy: give all four \(normalised\)"):
        choose_intrinsics((0.6, None, None, None), "m.ckpt", {})


def test_point_clouds_need_a_metric_scale(tmp_path, capsys):
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 64, use_stereo=False)
    Image.new("RGB", (40, 30), "gray").save(tmp_path / "f.png")
    args = ["predict", tmp_path / "f.png", "--weights", tmp_path / "w", "--out", tmp_path / "o"]
    assert _error(*args, "--point-cloud") == (
        "mono predict: --point-cloud needs depth in metres, but this model has no metric scale "
        "(trained without a stereo frame 's' or ground truth, its depth is known up to scale); "
        "give --scale S, the metres per unit of its depth (e.g. a known distance divided by the "
        "predicted one)"
    )
    capsys.readouterr()
    main([str(a) for a in [*args, "--point-cloud", "--scale", "3"]])
    out = capsys.readouterr().out
    assert (
        "point clouds: intrinsics fx=0.58 fy=1.92 cx=0.5 cy=0.5 (normalised), the model's "
        "training intrinsics (a Monodepth2 weights folder: trained with Monodepth2's average "
        "KITTI K)" in out
    )
    vertices, _ = read_ply(tmp_path / "o" / "f.ply")
    depth = np.load(tmp_path / "o" / "f_depth.npy")
    assert len(vertices) == 30 * 40
    np.testing.assert_allclose(vertices["z"], depth.ravel(), rtol=1e-6)
    np.testing.assert_allclose(depth, 3 / np.load(tmp_path / "o" / "f_disp.npy"), rtol=1e-6)


# ----------------------------------------------------------------------------- video
def _write_clip(path, frames: int, size=(48, 64), fps=5):
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            array = np.zeros((*size, 3), np.uint8)
            array[:, : 8 * (i + 1)] = rng.integers(60, 200, 3)  # a bar that grows frame by frame
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))


def _decode(path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as container:
        rate = float(container.streams.video[0].average_rate)
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)], rate


def test_depth_video_has_every_frame_beside_its_depth(tmp_path):
    _write_clip(tmp_path / "clip.mp4", frames=7)
    inputs = [np.asarray(img) for _, img in read_frames(tmp_path / "clip.mp4")]
    nets = LoadedNetworks(HalvesDisp(), None, 48, 64)
    preds = predict(
        nets, tmp_path / "clip.mp4", tmp_path / "o", batch_size=3, log=None,
        video=tmp_path / "o" / "v.mp4",
    )  # fmt: skip
    frames, rate = _decode(tmp_path / "o" / "v.mp4")
    assert len(preds) == len(frames) == len(inputs) == 7 and rate == 5
    disp = torch.from_numpy(np.load(preds[0].disp))[None, None]
    picture = depth_picture(disp)  # left half dark (far), right half bright (near)
    for frame, source in zip(frames, inputs, strict=True):
        assert frame.shape == (48, 128, 3)
        assert np.abs(frame[:, :64].astype(int) - source).mean() < 4  # lossy codec
        assert np.abs(frame[:, 64:].astype(int) - picture).mean() < 4
    assert frames[0][:, 64:96].mean() < 40 and frames[0][:, 96:].mean() > 150


def test_video_through_the_cli_as_gif_and_default_mp4(tmp_path, capsys):
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 64, use_stereo=False)
    _write_clip(tmp_path / "clip.mp4", frames=5)
    base = ["predict", tmp_path / "clip.mp4", "--weights", tmp_path / "w", "--out", tmp_path / "o"]
    main([str(a) for a in [*base, "--video", tmp_path / "v.gif"]])
    with Image.open(tmp_path / "v.gif") as gif:
        assert (gif.n_frames, gif.size, gif.info["duration"]) == (5, (128, 48), 200)
    main([str(a) for a in [*base, "--video"]])
    out = capsys.readouterr().out
    default = tmp_path / "o" / "clip_depth.mp4"
    assert f"predict: wrote 5 frame(s) beside their depth to {default}" in out
    assert len(_decode(default)[0]) == 5
    assert _error(*base, "--video", tmp_path / "v.avi") == (
        f"mono predict: --video {tmp_path / 'v.avi'}: choose a .mp4 or .gif file"
    )


# ----------------------------------------------------------------------------- post-processing
def test_post_process_blends_the_mirrored_prediction(tmp_path):
    Image.new("RGB", (40, 4), "gray").save(tmp_path / "f.png")  # 5 % of the width: 2 columns
    nets = LoadedNetworks(HalvesDisp(), None, 4, 40)
    (plain,) = predict(nets, tmp_path / "f.png", tmp_path / "a", log=None)
    (blended,) = predict(nets, tmp_path / "f.png", tmp_path / "b", log=None, post_process=True)
    plain, blended = np.load(plain.disp), np.load(blended.disp)
    assert (plain[0, 0], plain[0, 39]) == pytest.approx((_scaled(0.2), _scaled(0.8)))
    # The mirrored pass sees the same halves, so mirrored back it says 0.8 on the left: the
    # 5 % borders take the other pass, the middle (x in [0.1, 0.9]) the mean of both.
    np.testing.assert_allclose(blended[:, 4:36], _scaled(0.5), rtol=1e-6)
    np.testing.assert_allclose(blended[:, :2], _scaled(0.8), rtol=1e-6)
    np.testing.assert_allclose(blended[:, 38:], _scaled(0.8), rtol=1e-6)
