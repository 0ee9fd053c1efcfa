"""Every tool that loads weights verifies the checkpoint's checksums and refuses NaN weights."""

import struct
import zipfile

import pytest
import torch

from mono.checkpoint import CheckpointError, init_model_from_monodepth2, load_networks
from mono.cli import main
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2

H, W = 64, 192


def _checkpoint(path, poison: str | None = None):
    """A small mono checkpoint (depth net only); ``poison`` gets a NaN in its first element."""
    torch.manual_seed(0)
    state = {f"depth.{k}": v for k, v in DepthNet(18).state_dict().items()}
    if poison is not None:
        state[poison].view(-1)[0] = float("nan")
    hp = {"height": H, "width": W, "frame_ids": ["0", "-1", "1"], "num_layers": 18}
    torch.save({"state_dict": state, "hyper_parameters": hp}, path)
    return path


def _flip_one_bit(path) -> str:
    """Flip one bit in the middle of the largest member's data; returns the member's name."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    # Local header: 30 fixed bytes, then the name and the extra field (lengths at 26 and 28).
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    return info.filename


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    path = _checkpoint(tmp_path_factory.mktemp("ckpt") / "flipped.ckpt")
    member = _flip_one_bit(path)
    return path, (
        f"checkpoint {path} is corrupt or truncated (member {member} fails its CRC check); use "
        "another checkpoint (e.g. last.ckpt or an earlier best-*.ckpt)"
    )


def test_one_flipped_bit_is_refused_by_load_networks(flipped):
    path, message = flipped
    with pytest.raises(CheckpointError) as info:
        load_networks(path)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "command",
    [
        ["export", "--format", "pt", "--out", "{tmp}/o"],
        ["predict", "{tmp}/in.png", "--out", "{tmp}/o"],
        ["evaluate", "--data", "{tmp}", "--split", "eigen"],
    ],
)
def test_one_flipped_bit_is_refused_by_every_tool(flipped, tmp_path, command):
    path, message = flipped
    args = [a.format(tmp=tmp_path) for a in command] + ["--ckpt", str(path)]
    with pytest.raises(SystemExit) as info:
        main(args)
    prefix = "mono evaluate: error" if command[0] == "evaluate" else f"mono {command[0]}"
    assert info.value.code == f"{prefix}: {message}"


def test_nan_weights_are_refused_naming_the_tensor(tmp_path):
    name = "depth.decoder.decoder.13.conv.weight"
    path = _checkpoint(tmp_path / "nan.ckpt", poison=name)
    size = torch.load(path, weights_only=False)["state_dict"][name].numel()
    with pytest.raises(CheckpointError) as info:
        load_networks(path)
    assert str(info.value) == (
        f"{path}: tensor '{name}' holds 1 non-finite values of {size} (first: nan); the weights "
        "are unusable (a diverged run?): use an earlier checkpoint"
    )
    with pytest.raises(SystemExit, match=f"mono export: {path}: tensor '{name}'"):
        main(["export", "--ckpt", str(path), "--out", str(tmp_path / "o"), "--format", "pt"])


def test_nan_weights_in_a_monodepth2_folder_are_refused(tmp_path):
    torch.manual_seed(0)
    net = DepthNet(18)
    with torch.no_grad():
        net.encoder.encoder.conv1.weight[0, 0, 0, 0] = float("inf")
    save_monodepth2(tmp_path / "w", net, H, W)
    with pytest.raises(CheckpointError) as info:
        load_networks(tmp_path / "w")
    size = net.encoder.encoder.conv1.weight.numel()
    assert str(info.value) == (
        f"{tmp_path / 'w' / 'encoder.pth'}: tensor 'encoder.conv1.weight' holds 1 non-finite "
        f"values of {size} (first: inf); the weights are unusable (a diverged run?): use an "
        "earlier checkpoint"
    )


def test_a_flipped_bit_in_monodepth2_weights_is_refused_for_fine_tuning(tmp_path):
    from types import SimpleNamespace

    torch.manual_seed(0)
    save_monodepth2(tmp_path / "w", DepthNet(18), H, W)
    member = _flip_one_bit(tmp_path / "w" / "depth.pth")
    model = SimpleNamespace(
        depth=DepthNet(18),
        pose=None,
        hparams=SimpleNamespace(height=H, width=W, min_depth=0.1, max_depth=100.0),
    )
    with pytest.raises(CheckpointError) as info:
        init_model_from_monodepth2(model, tmp_path / "w")
    assert str(info.value) == (
        f"checkpoint {tmp_path / 'w' / 'depth.pth'} is corrupt or truncated (member {member} "
        "fails its CRC check); use another checkpoint (e.g. last.ckpt or an earlier best-*.ckpt)"
    )
