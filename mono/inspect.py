"""What the self-supervised loss saw, for one batch and a model: the entry point of the notebooks.

:func:`inspect_batch` runs :meth:`mono.module.DepthModel.compute_loss` with ``keep=True`` and
returns an :class:`Inspection` on the CPU: target and sources, every warped source per scale,
per-source reprojection and identity errors, the minimum's winner, the auto-mask (Godard et al.
2019, Sec. 3.3), disparities at every scale and the smoothness weights. The synthetic drives
add ground truth (:mod:`mono.inspect_synth`): fetch any (drive, frame), e.g. the stationary
stretch or the car that drives with the camera, and swap the networks for the true depth and
motion to see what a perfect model is scored on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mono.checkpoint import read_checkpoint
from mono.data.augment import prepare_batch
from mono.module import DepthModel
from mono.objective import ObjectiveConfig, ObjectiveDetail, ScaleDetail
from mono.types import Batch, Views
from mono.visualize import colorize, winner_picture, winner_term_names


def _cpu(value):
    """Detached CPU copy of tensors inside (nested) dataclasses, lists and dicts."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _cpu(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


@dataclass
class Inspection:
    """Every intermediate of the view-synthesis loss for one batch, on the CPU.

    Attributes:
        terms: the scalar loss terms (``loss``, ``reprojection``, ``smoothness``, ...).
        detail: the objective's intermediates (:class:`mono.objective.ObjectiveDetail`):
            ``target`` (B, 3, H, W), ``sources`` (B, S, 3, H, W), ``identity`` (B, S, H, W)
            errors of the un-warped sources (with tie-break noise) and per scale
            ``scales[s]``: ``disp``, ``depth``, ``warped`` (B, S, 3, H, W), ``reprojection``
            (B, S, H, W), ``result`` (minimum, winner, auto-mask), ``smoothness_weights``.
        views: the network input the batch was prepared into.
        objective: the loss switches the model used.
    """

    terms: dict[str, float]
    detail: ObjectiveDetail
    views: Views
    objective: ObjectiveConfig

    @property
    def source_ids(self) -> list[str]:
        return self.detail.source_ids

    @property
    def disps(self) -> list[Tensor]:
        """Sigmoid disparities in [0, 1] at every decoder scale, finest first, (B, 1, h_s, w_s)."""
        return [s.disp for s in self.detail.scales]

    def scale(self, s: int = 0) -> ScaleDetail:
        return self.detail.scales[s]

    def automask(self, s: int = 0) -> Tensor:
        """(B, 1, H, W) bool, True where scale ``s`` kept the pixel (a warp beat no motion)."""
        return self.detail.scales[s].result.automask

    def winner(self, s: int = 0) -> Tensor:
        """(B, 1, H, W) int64 index into :attr:`term_names` of each pixel's minimum."""
        return self.detail.scales[s].result.winner

    @property
    def term_names(self) -> list[str]:
        """Names of the candidates the per-pixel minimum chose from, in winner-index order."""
        num_identity = 0 if self.detail.identity is None else self.detail.identity.shape[1]
        return winner_term_names(self.source_ids, num_identity, self.objective.avg_reprojection)

    def masked_fraction(self, s: int = 0, region: Tensor | None = None) -> Tensor:
        """(B,) share of pixels the auto-mask switched off, within an optional (B, 1, H, W) region.

        A sample whose region is empty gives NaN.
        """
        masked = (~self.automask(s)).float()
        region = torch.ones_like(masked) if region is None else region.to(masked.dtype)
        return (masked * region).sum((1, 2, 3)) / region.sum((1, 2, 3))

    def panels(self, sample: int = 0, s: int = 0) -> dict[str, Tensor]:
        """Named (3, h, w) pictures in [0, 1] of one sample at scale ``s``.

        Error maps (identity, reprojection, minimum) share one colour scale (95th percentile
        of them all), so they can be compared by eye; the auto-mask is white where kept.
        """
        d, sd = self.detail, self.detail.scales[s]
        out = {"target": d.target[sample]}
        for i, f in enumerate(self.source_ids):
            out[f"source {f}"] = d.sources[sample, i]
        for i, f in enumerate(self.source_ids):
            out[f"warped {f} (scale {s})"] = sd.warped[sample, i]
        errors = {}
        # With v1 multi-scale, coarse scales compare at their own size: identity is full-size.
        identity = d.identity if sd.reprojection.shape[-2:] == d.target.shape[-2:] else None
        for i, f in enumerate(self.source_ids):
            if identity is not None:
                errors[f"identity error {f}"] = identity[sample, i]
            errors[f"reprojection error {f}"] = sd.reprojection[sample, i]
        errors["minimum (the loss)"] = sd.result.loss[sample, 0]
        out.update(_shared_colours(errors))
        legend, picture = self.winner_picture(sample, s)
        out["winner: " + legend] = picture
        out["auto-mask (white = kept)"] = sd.result.automask[sample].float().expand(3, -1, -1)
        out[f"disparity (scale {s})"] = colorize(sd.disp[sample : sample + 1])[0]
        out[f"smoothness weights (scale {s})"] = sd.smoothness_weights[sample].expand(3, -1, -1)
        return {k: v.clamp(0, 1) for k, v in out.items()}

    def winner_picture(self, sample: int = 0, s: int = 0) -> tuple[str, Tensor]:
        """(legend, (3, H, W) picture) of which candidate won each pixel's minimum, in the
        palette of the logged ``winner`` panel (:mod:`mono.visualize`)."""
        legend, picture = winner_picture(self.winner(s)[sample : sample + 1], self.term_names)
        return legend, picture[0]

    def disparity_panels(self, sample: int = 0) -> dict[str, Tensor]:
        """The disparity of every decoder scale of one sample, (3, h_s, w_s) each."""
        pictures = [colorize(d[sample : sample + 1])[0] for d in self.disps]
        return {f"disparity scale {s} {tuple(p.shape[-2:])}": p for s, p in enumerate(pictures)}


def _shared_colours(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """Colour (H, W) maps with one scale: colorize them side by side as a single image."""
    joint = torch.cat([m.float() for m in maps.values()], dim=-1)[None, None]
    pictures = colorize(joint, cmap="viridis")[0].split(
        [m.shape[-1] for m in maps.values()], dim=-1
    )
    return dict(zip(maps, pictures, strict=True))


def inspect_batch(model: DepthModel, batch: Batch | Views, seed: int | None = 0) -> Inspection:
    """Run the model's loss on one batch and keep every intermediate.

    The model runs in eval mode without gradients (its mode is restored afterwards) on its own
    device; the result is moved to the CPU.

    Args:
        model: a self-supervised :class:`~mono.module.DepthModel` (or
            :func:`mono.inspect_synth.truth_model`).
        batch: a collated :class:`~mono.types.Batch` (prepared to the model's input size
            with :func:`mono.data.augment.prepare_batch`) or prepared :class:`~mono.types.Views`.
        seed: seed of the auto-mask's tie-break noise, so an inspection repeats exactly (the
            global random state is left alone); None draws from the global generator.

    Raises:
        ValueError: the model has no view-synthesis loss (``training_mode='supervised'``).
    """
    if not model.self_supervised:
        raise ValueError(
            f"inspect_batch: model.training_mode='{model.hparams.training_mode}' has no "
            "view-synthesis loss to inspect"
        )
    device = model.device
    views = batch.to(device)
    if isinstance(views, Batch):
        views = prepare_batch(views, model.hparams.height, model.hparams.width)
    was_training = model.training
    model.eval()
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=forked, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            terms = model.compute_loss(views, keep=True)
    finally:
        model.train(was_training)
    return Inspection(
        terms={"loss": float(terms.loss), **{k: float(v) for k, v in terms.values.items()}},
        detail=_cpu(terms.detail),
        views=views.to("cpu"),
        objective=model.objective,
    )


def load_model(path: str | Path) -> DepthModel:
    """A trained :class:`~mono.module.DepthModel` from a Lightning checkpoint, on the CPU.

    ImageNet weights are never downloaded (the checkpoint holds every weight).

    Raises:
        mono.checkpoint.CheckpointError: missing, corrupt or not a mono checkpoint.
    """
    read_checkpoint(path)  # the clear error for a bad file, before Lightning's own
    model = DepthModel.load_from_checkpoint(str(path), map_location="cpu", pretrained=False)
    return model.eval()


def show_panels(panels: dict[str, Tensor], ncols: int = 4, width: float = 16.0, title: str = ""):
    """A matplotlib figure of named (3, h, w) pictures, ``ncols`` per row."""
    import textwrap

    import matplotlib.pyplot as plt

    nrows = -(-len(panels) // ncols)
    h, w = next(iter(panels.values())).shape[-2:]
    height = width / ncols * h / w * nrows * 1.3 + 0.4 * bool(title)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, picture) in zip(axes.flat, panels.items(), strict=False):
        ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(textwrap.fill(name, 200 // ncols), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
