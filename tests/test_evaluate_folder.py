"""``mono evaluate --images DIR --gt DIR``: your own images and depth maps, the KITTI table."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from mono.cli import main
from mono.evaluation.folder import cmd_evaluate_folder
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2


def _tables(out: str) -> list[dict[str, float]]:
    """Every results table printed: header ``abs_rel | ...`` then ``&  v  &  v ... \\\\``."""
    lines = out.splitlines()
    tables = []
    for header, values in zip(lines, lines[1:], strict=False):
        if header.strip().startswith("abs_rel |"):
            names = [n.strip() for n in header.split("|") if n.strip()]
            numbers = [float(v) for v in values.replace("\\\\", "").split("&") if v.strip()]
            tables.append(dict(zip(names, numbers, strict=True)))
    return tables


def _error(*args) -> str:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert isinstance(info.value.code, str)
    return info.value.code


def _two_depths(tmp_path, gt_ext="npy"):
    """Two 8 x 10 frames; depth 2 m (columns 0-3), 4 m (4-7), 10 m (8-9, masked out)."""
    for folder in ("images", "gt", "mask"):
        (tmp_path / folder).mkdir()
    depth = np.full((8, 10), 2.0, np.float32)
    depth[:, 4:8], depth[:, 8:] = 4.0, 10.0
    mask = np.full((8, 10), 255, np.uint8)
    mask[:, 8:] = 0
    for name in ("a", "b"):
        Image.new("RGB", (10, 8), "gray").save(tmp_path / "images" / f"{name}.jpg")
        if gt_ext == "npy":
            np.save(tmp_path / "gt" / f"{name}.npy", depth)
        else:
            Image.fromarray((depth * 256).astype(np.uint16)).save(tmp_path / "gt" / f"{name}.png")
        Image.fromarray(mask).save(tmp_path / "mask" / f"{name}.png")
    return tmp_path / "images", tmp_path / "gt", tmp_path / "mask"


def test_hand_computed_scores_with_a_mask(tmp_path):
    images, gt, mask = _two_depths(tmp_path)
    np.save(gt / "b.npy", np.where(np.eye(8, 10) > 0, np.nan, np.load(gt / "b.npy")))

    def constant(x):
        return torch.ones(x.shape[0], 1, *x.shape[-2:])

    result = cmd_evaluate_folder(images, gt, constant, 8, 10, mask=mask, log=None)
    # Median scaling: the median of 32 x 2 m and 32 x 4 m is 3 m, predicted everywhere
    # (image b: the NaN diagonal is not scored, and 3 m is still its median).
    assert result.metrics["abs_rel"] == pytest.approx((0.5 + 0.25) / 2)
    assert result.metrics["rmse"] == pytest.approx(1.0)
    assert (result.metrics["a1"], result.metrics["a2"]) == (0.0, 1.0)  # 3/2, 4/3 vs 1.25
    assert result.baseline == result.metrics  # a constant prediction is the baseline
    unmasked = cmd_evaluate_folder(images, gt, constant, 8, 10, log=None)
    assert unmasked.ratio_median == pytest.approx(4.0)  # 10 m pixels move the median to 4 m


def test_png_ground_truth_with_its_scale_through_the_cli(tmp_path, capsys):
    images, gt, mask = _two_depths(tmp_path, gt_ext="png")
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 64)
    base = ["evaluate", "--weights", tmp_path / "w", "--images", images, "--gt", gt]
    main([str(a) for a in [*base, "--mask", mask]])
    out = capsys.readouterr().out
    assert f"-> Evaluating {images} (ground truth and masks from {gt}, 2 images)" in out
    model, baseline = _tables(out)
    assert "constant depth (median-scaled):" in out
    assert (baseline["abs_rel"], baseline["rmse"]) == (0.375, 1.0)
    main([str(a) for a in [*base, "--mask", mask, "--gt-scale", "512"]])
    assert _tables(capsys.readouterr().out)[1]["rmse"] == 0.5  # depths of 1 and 2 m


def test_same_scores_as_the_split_protocol_on_the_synthetic_drives(
    synthetic_root, tmp_path, capsys
):
    lines = (synthetic_root / "splits" / "test_files.txt").read_text().splitlines()[:4]
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "test_files.txt").write_text("\n".join(lines) + "\n")
    for folder in ("images", "gt"):
        (tmp_path / folder).mkdir()
    for i, line in enumerate(lines):
        drive, frame, _side = line.split()
        name = f"{int(frame):010d}.png"
        shutil.copy(
            synthetic_root / drive / "image_02" / "data" / name, tmp_path / "images" / f"f{i}.png"
        )
        dense = synthetic_root / drive / "proj_depth" / "groundtruth" / "image_02" / name
        shutil.copy(dense, tmp_path / "gt" / f"f{i}.png")
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 192, use_stereo=True)
    weights = ["--weights", tmp_path / "w"]
    split = ["--data", synthetic_root, "--split", tmp_path / "split", "--gt-source", "dense"]
    main([str(a) for a in ["export-gt", *split]])
    capsys.readouterr()
    main([str(a) for a in ["evaluate", *weights, *split]])
    from_split = _tables(capsys.readouterr().out)
    main(
        [
            str(a)
            for a in [
                "evaluate",
                *weights,
                "--images",
                tmp_path / "images",
                "--gt",
                tmp_path / "gt",
            ]
        ]
    )
    out = capsys.readouterr().out
    assert "-> Scaling: stereo (auto: the model's depth is metric, x5.4)" in out
    assert len(from_split) == 2 and _tables(out) == from_split


def test_folder_errors_name_the_file_or_option(tmp_path):
    images, gt, mask = _two_depths(tmp_path)
    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), 64, 64)
    base = ["evaluate", "--weights", tmp_path / "w"]
    (gt / "b.npy").unlink()
    assert _error(*base, "--images", images, "--gt", gt) == (
        f"mono evaluate: error: 1 of 2 images have no ground truth of the same name in {gt}: b"
    )
    Image.new("L", (10, 8)).save(gt / "b.png")
    assert _error(*base, "--images", images, "--gt", gt) == (
        f"mono evaluate: error: {gt / 'b.png'}: PNG mode L; depth PNGs hold 16-bit integers "
        "(depth x --gt-scale, KITTI's uint16 x 256), or give .npy files in metres"
    )
    assert _error(*base, "--images", images, "--gt", gt / "a.npy") == (
        "mono evaluate: error: --images needs --gt DIR, a folder of depth maps "
        f"(got {gt / 'a.npy'})"
    )
    assert _error(*base, "--data", tmp_path, "--mask", mask) == (
        "mono evaluate: error: --gt-scale and --mask apply to --images DIR only"
    )
