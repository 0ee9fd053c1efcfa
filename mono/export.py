"""Export trained networks for use elsewhere: plain tensors, TorchScript, ONNX, Monodepth2 folders.

Formats (``mono export --format``), each written with a ``<file>.json`` that describes it:

- ``pt``: plain ``torch.save`` dicts of tensors and numbers (``encoder.pt``, ``depth.pt``,
  ``pose.pt``); :func:`load_encoder` turns ``encoder.pt`` back into a backbone.
- ``torchscript`` / ``onnx``: the wrappers :class:`DisparityModel` (image -> full-resolution
  disparity), :class:`PoseModel` (two frames -> axis-angle, translation) and
  :class:`EncoderFeatures` (image -> five feature maps), traced at the training size with a
  dynamic batch axis.
- ``monodepth2``: a weights folder the reference's own scripts load (``encoder.pth`` with
  ``height``/``width``/``use_stereo`` and mono's ``min_depth``/``max_depth``/``metric_scale``,
  which the reference ignores; ``depth.pth``, ``pose_encoder.pth``, ``pose.pth``).

Every network takes RGB in [0, 1]; the (x - 0.45) / 0.225 normalisation is inside.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mono.checkpoint import CheckpointError, LoadedNetworks
from mono.nets import DepthNet, PoseNet, ResnetEncoder, build_depth_net, depth_net_name
from mono.nets.monodepth2_format import (
    load_state_checked,
    write_monodepth2_files,
)
from mono.nets.resnet_encoder import INPUT_MEAN, INPUT_STD
from mono.output_files import check_writable_folder, writing
from mono.tools import EXPORT_FORMATS, EXPORT_PARTS, ONNX_OPSET

PT_VERSION = 1


class DisparityModel(nn.Module):
    """Depth network reduced to one tensor in, one out (what TorchScript/ONNX users need).

    ``forward(image)``: image (B, 3, H, W) RGB in [0, 1] -> sigmoid disparity (B, 1, H, W) at
    scale 0; ``mono.geometry.disp_to_depth`` with the exported min/max depth gives depth.
    """

    def __init__(self, depth_net: nn.Module):
        super().__init__()
        self.net = depth_net

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).disps[0]


class PoseModel(nn.Module):
    """Pose network as ``(frame_a, frame_b) -> (axisangle, translation)``, each (B, 3).

    A ``"shared"`` pose network reads the depth encoder's features, so that encoder comes along.
    """

    def __init__(self, pose_net: PoseNet, depth_encoder: nn.Module | None = None):
        super().__init__()
        if pose_net.kind == "shared" and depth_encoder is None:
            raise ValueError("a 'shared' pose network needs the depth encoder to be exported")
        self.pose = pose_net
        self.depth_encoder = depth_encoder if pose_net.kind == "shared" else None

    def forward(self, frame_a: Tensor, frame_b: Tensor) -> tuple[Tensor, Tensor]:
        return self.pose(frame_a, frame_b, encode=self.depth_encoder)


class EncoderFeatures(nn.Module):
    """ResNet encoder returning its five feature maps (strides 2 .. 32) as a tuple."""

    def __init__(self, encoder: ResnetEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        f0, f1, f2, f3, f4 = self.encoder(image)
        return f0, f1, f2, f3, f4


class _SizeChecked(nn.Module):
    """Scripted guard around a traced module: a trace silently accepts any input size."""

    def __init__(self, inner: nn.Module, channels: int, height: int, width: int):
        super().__init__()
        self.inner = inner
        self.channels, self.height, self.width = channels, height, width

    def forward(self, image: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != self.channels:
            raise ValueError(f"expected an image batch (B, {self.channels}, H, W)")
        if image.shape[2] != self.height or image.shape[3] != self.width:
            raise ValueError(
                f"input size {image.shape[2]}x{image.shape[3]} does not match the exported "
                f"size {self.height}x{self.width}; resize the image first"
            )
        return self.inner(image)


# ----------------------------------------------------------------------------- descriptions
def _image_spec(name: str, height: int, width: int, channels: int = 3) -> dict[str, Any]:
    return {
        "name": name,
        "shape": ["batch", channels, height, width],
        "dtype": "float32",
        "range": [0.0, 1.0],
        "layout": "RGB, NCHW",
    }


def _meta(nets: LoadedNetworks) -> dict[str, Any]:
    meta = {
        "height": nets.height,
        "width": nets.width,
        "normalisation": {"mean": INPUT_MEAN, "std": INPUT_STD, "applied": "inside the network"},
        "min_depth": nets.min_depth,
        "max_depth": nets.max_depth,
        "frame_ids": list(nets.frame_ids),
        "stereo_trained": nets.stereo_trained,
        "metric_scale": nets.metric_scale,
        "source": nets.source,
    }
    if nets.learned_K is not None:
        K = nets.learned_K
        meta["learned_intrinsics"] = {
            "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
            "units": "normalised: fx, cx by the image width; fy, cy by its height",
        }  # fmt: skip
    return meta


def _in_metres(scale: float | None) -> str:
    if scale is None:
        return "; up to scale (a monocular model)"
    if scale == 1.0:
        return "; depth is in metres"
    return f"; metres = {scale:g} * depth"


def _part_io(part: str, nets: LoadedNetworks) -> tuple[list[dict], list[dict]]:
    h, w = nets.height, nets.width
    if part == "encoder":
        chans = nets.depth.encoder.num_ch_enc
        outs = [
            {"name": f"features_{i}", "shape": ["batch", c, h // 2 ** (i + 1), w // 2 ** (i + 1)]}
            for i, c in enumerate(chans)
        ]
        return [_image_spec("image", h, w)], outs
    if part == "depth":
        disp = {
            "name": "disparity",
            "shape": ["batch", 1, h, w],
            "range": [0.0, 1.0],
            "to_depth": "depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) * disparity)"
            + _in_metres(nets.metric_scale),
        }
        return [_image_spec("image", h, w)], [disp]
    ins = [_image_spec("frame_a", h, w), _image_spec("frame_b", h, w)]
    outs = [
        {"name": "axisangle", "shape": ["batch", 3]},
        {"name": "translation", "shape": ["batch", 3]},
    ]
    return ins, outs


def _write_json(path: Path, info: dict[str, Any]) -> None:
    """``<path>.json`` next to an export: what it is, its inputs and outputs, its size."""
    Path(f"{path}.json").write_text(json.dumps(info, indent=1) + "\n")


def _describe(path: Path, fmt: str, part: str, nets: LoadedNetworks) -> dict[str, Any]:
    inputs, outputs = _part_io(part, nets)
    info = {"format": fmt, "part": part, "file": path.name, "size_bytes": path.stat().st_size}
    return {**info, **_meta(nets), "inputs": inputs, "outputs": outputs}


# ----------------------------------------------------------------------------- pt
def _pt_payload(part: str, nets: LoadedNetworks) -> dict[str, Any]:
    meta = {k: v for k, v in _meta(nets).items() if k not in ("normalisation", "source")}
    meta.update(input_mean=INPUT_MEAN, input_std=INPUT_STD, version=PT_VERSION, part=part)
    if part == "encoder":
        enc = nets.depth.encoder
        meta.update(num_layers=enc.num_layers, num_ch_enc=list(enc.num_ch_enc))
        return {**meta, "state_dict": enc.state_dict()}
    if part == "depth":
        name, kwargs = depth_net_name(nets.depth), nets.depth.settings()
        return {
            **meta,
            "depth_net": name,
            "net_kwargs": kwargs,
            "state_dict": nets.depth.state_dict(),
        }
    pose = nets.pose
    meta.update(kind=pose.kind, num_layers=pose.num_layers)
    return {**meta, "state_dict": pose.state_dict()}


def load_pt(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A network from ``mono export --format pt`` (eval mode) and its metadata.

    Raises:
        CheckpointError: the file is missing, corrupt or not a mono ``pt`` export.
        ValueError: its weights do not fit the described network (keys/shapes named).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"export not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle and unpickling-policy errors alike
        raise CheckpointError(f"{path} is corrupt or not a mono pt export ({err})") from None
    if not isinstance(data, dict) or data.get("part") not in ("encoder", "depth", "pose"):
        raise CheckpointError(f"{path} is not a mono pt export (no 'part' entry)")
    part = data["part"]
    if part == "encoder":
        net: nn.Module = ResnetEncoder(int(data["num_layers"]), pretrained=False)
    elif part == "depth":
        kwargs = dict(data["net_kwargs"])
        if data["depth_net"] == "resnet":
            kwargs["scales"] = tuple(kwargs["scales"])
        net = build_depth_net(data["depth_net"], **kwargs)
    else:
        net = PoseNet(kind=data["kind"], num_layers=int(data["num_layers"]), pretrained=False)
    load_state_checked(net, data["state_dict"], str(path))
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    return net.eval(), meta


def load_encoder(path: str | Path) -> ResnetEncoder:
    """The depth encoder saved by ``mono export --format pt --part encoder`` (a backbone).

    It takes RGB in [0, 1] (normalisation inside) at any size that is a multiple of 32 and
    returns five feature maps with ``encoder.num_ch_enc`` channels; the training size is in
    :func:`load_pt`'s metadata.
    """
    net, meta = load_pt(path)
    if meta["part"] != "encoder":
        raise CheckpointError(f"{path} holds the {meta['part']} network, not the encoder")
    assert isinstance(net, ResnetEncoder)
    return net


# ----------------------------------------------------------------------------- traced
def _traced_module(part: str, nets: LoadedNetworks) -> tuple[nn.Module, tuple[Tensor, ...]]:
    # example inputs only fix shapes; a private generator leaves the global RNG alone
    x = torch.rand(2, 3, nets.height, nets.width, generator=torch.Generator().manual_seed(0))
    if part == "encoder":
        return EncoderFeatures(nets.depth.encoder).eval(), (x,)
    if part == "depth":
        return DisparityModel(nets.depth).eval(), (x,)
    encoder = nets.depth.encoder if isinstance(nets.depth, DepthNet) else None
    return PoseModel(nets.pose, encoder).eval(), (x, torch.rand_like(x))


@contextmanager
def _quiet():
    """Silence the tracer's notes on shape checks and the deprecation notices of jit/onnx."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        yield


def _export_torchscript(path: Path, part: str, nets: LoadedNetworks) -> None:
    module, args = _traced_module(part, nets)
    with _quiet():
        traced = torch.jit.trace(module, args)
        if part == "depth":  # the encoder stays usable at other sizes, as a backbone should
            traced = torch.jit.script(_SizeChecked(traced, 3, nets.height, nets.width))
        traced.save(str(path))


def _export_onnx(path: Path, part: str, nets: LoadedNetworks, opset: int) -> None:
    if importlib.util.find_spec("onnx") is None:
        raise ValueError("--format onnx needs the onnx package: pip install 'mono[export]'")
    module, args = _traced_module(part, nets)
    inputs, outputs = _part_io(part, nets)
    names_in, names_out = [s["name"] for s in inputs], [s["name"] for s in outputs]
    with _quiet():
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,  # the dynamo exporter needs onnxscript
            opset_version=opset,
            input_names=names_in,
            output_names=names_out,
            dynamic_axes={n: {0: "batch"} for n in names_in + names_out},
        )


# ----------------------------------------------------------------------------- entry points
def _parts(part: str, nets: LoadedNetworks) -> list[str]:
    if part not in EXPORT_PARTS:
        raise ValueError(f"--part {part!r}: choose one of {EXPORT_PARTS}")
    resnet = isinstance(nets.depth, DepthNet)
    if part == "encoder" and not resnet:
        raise ValueError("--part encoder needs a ResNet depth network (this one is 'eigen')")
    if part == "pose" and nets.pose is None:
        raise ValueError(f"--part pose: {nets.source} has no pose network")
    if part != "all":
        return [part]
    return (["encoder"] if resnet else []) + ["depth"] + (["pose"] if nets.pose else [])


def _export_monodepth2(out: Path, part: str, nets: LoadedNetworks) -> list[Path]:
    if not isinstance(nets.depth, DepthNet):
        raise ValueError("the monodepth2 format needs a ResNet depth network (this one is 'eigen')")
    settings = {
        "min_depth": nets.min_depth,
        "max_depth": nets.max_depth,
        "metric_scale": nets.metric_scale,
    }
    parts = {
        "encoder": ("encoder",),
        "depth": ("encoder", "depth"),  # the decoder alone cannot be loaded
        "pose": ("pose",),
        "all": ("encoder", "depth", "pose"),
    }[part]
    written = write_monodepth2_files(
        out, nets.depth, nets.height, nets.width, nets.pose, nets.stereo_trained, settings, parts
    )
    files = {p.name: p.stat().st_size for p in written}
    _write_json(out / "monodepth2", {"format": "monodepth2", "files": files, **_meta(nets)})
    return written


def export_networks(
    nets: LoadedNetworks, out: str | Path, fmt: str, part: str = "all", opset: int = ONNX_OPSET
) -> list[Path]:
    """Write ``nets`` to ``out`` in one format; returns the files written (JSONs excluded).

    Files: ``{encoder,depth,pose}.pt`` | ``.torchscript.pt`` | ``.onnx``, each with a
    ``<file>.json``; or the Monodepth2 ``*.pth`` files plus ``monodepth2.json``.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"--format {fmt!r}: choose one of {EXPORT_FORMATS}")
    if opset < 17:
        raise ValueError(f"--opset {opset}: at least 17 is needed")
    out = check_writable_folder(out, "--out")
    parts = _parts(part, nets)
    if fmt == "monodepth2":
        with writing(out, "Monodepth2 weights into", errors=(OSError, RuntimeError)):
            return _export_monodepth2(out, part, nets)
    written = []
    suffix = {"pt": ".pt", "torchscript": ".torchscript.pt", "onnx": ".onnx"}[fmt]
    for name in parts:
        path = out / f"{name}{suffix}"
        # torch's zip writer reports a failed write (e.g. a full disk) as a RuntimeError.
        with writing(path, "export", errors=(OSError, RuntimeError)):
            if fmt == "pt":
                torch.save(_pt_payload(name, nets), path)
            elif fmt == "torchscript":
                _export_torchscript(path, name, nets)
            else:
                _export_onnx(path, name, nets, opset)
        info = _describe(path, fmt, name, nets)
        with writing(path.with_name(path.name + ".json")):
            _write_json(path, {**info, "opset": opset} if fmt == "onnx" else info)
        written.append(path)
    return written
