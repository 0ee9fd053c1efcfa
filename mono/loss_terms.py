"""The training objective as a list of weighted terms, each registered by name.

A term is one function ``(TermInputs) -> Tensor`` (a scalar to minimise, unweighted). The
objective of a run is a list of :class:`WeightedTerm` (name, weight, function), built once from
the model's options by :func:`configured_terms`; the loss is ``sum(weight * value)``.

* Self-supervised terms (:data:`SELF_SUPERVISED_TERMS`): ``reprojection`` (Monodepth2's
  per-pixel minimum reprojection with its switches, :func:`mono.objective.reprojection_loss`)
  and ``smoothness`` (edge-aware, scale s weighted 1 / 2**s). Monodepth2's loss is
  ``{"reprojection": 1, "smoothness": 1e-3}``.
* Supervised terms: every entry of :data:`mono.losses.SUPERVISED_LOSSES` on full-resolution
  depth against the batch's ground truth, logged as ``sup_<name>``.

Adding a term: a function here (or in ``mono/losses/`` plus a wrapper here), one registry line,
and its weight in ``model.self_supervised_terms`` (or ``model.supervised_losses``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from mono.losses import SUPERVISED_LOSSES
from mono.metrics import resize_into_padding
from mono.nets import DepthPredictor
from mono.objective import ObjectiveConfig, ObjectiveDetail, reprojection_loss, smoothness_loss
from mono.types import Views


@dataclass
class TermInputs:
    """Everything a term may read for one batch.

    Attributes:
        views: the prepared batch.
        disps: the depth network's sigmoid disparities, finest first.
        depth_net: the depth network (what the disparities mean: ``to_depth``).
        T_src_tgt: (B, S, 4, 4) target-to-source poses of the sources, or None (supervised).
        K: (B, 3, 3) pixel intrinsics the warp uses, or None (supervised).
        source_ids: frame ids of the sources.
        objective: Monodepth2's switches for the view-synthesis terms.
        masks: predictive masks per scale, or None.
        gt_depth_range: (low, high) metres: ground truth counts inside this open range.
        keep: record the view synthesis's intermediates into ``detail`` (inspection).
        detail: filled by the reprojection term when ``keep``.
    """

    views: Views
    disps: list[Tensor]
    depth_net: DepthPredictor
    T_src_tgt: Tensor | None = None
    K: Tensor | None = None
    source_ids: list[str] = field(default_factory=list)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    masks: list[Tensor] | None = None
    gt_depth_range: tuple[float, float] = (0.1, 100.0)
    keep: bool = False
    detail: ObjectiveDetail | None = None


TermFn = Callable[[TermInputs], Tensor]


def reprojection_term(inputs: TermInputs) -> Tensor:
    loss, detail = reprojection_loss(
        inputs.objective,
        inputs.views.color,
        inputs.disps,
        inputs.T_src_tgt,
        inputs.K,
        inputs.source_ids,
        masks=inputs.masks,
        keep=inputs.keep,
    )
    if inputs.keep:
        inputs.detail = detail
    return loss


def smoothness_term(inputs: TermInputs) -> Tensor:
    return smoothness_loss(inputs.disps, inputs.views.color[:, 0])


SELF_SUPERVISED_TERMS: dict[str, TermFn] = {
    "reprojection": reprojection_term,
    "smoothness": smoothness_term,
}


def supervised_term(name: str) -> TermFn:
    """The supervised loss ``name`` on the finest depth against the batch's ground truth.

    The ground truth stays at its native size: each prediction is resized to its own sample's
    size inside the zero padding (which is invalid ground truth), as the metrics do.
    """
    loss = SUPERVISED_LOSSES[name]

    def term(inputs: TermInputs) -> Tensor:
        gt = inputs.views.depth_gt
        if gt is None:
            raise ValueError(
                "model.training_mode needs ground truth but the batch has none: set data.depth "
                "to 'lidar', 'dense' or 'auto' with ground truth on disk"
            )
        depth = inputs.depth_net.to_depth(inputs.disps[0])
        pred = resize_into_padding(depth, inputs.views.sizes, gt.shape[-2:])
        low, high = inputs.gt_depth_range
        return loss(pred, gt, (gt > low) & (gt < high))

    return term


@dataclass(frozen=True)
class WeightedTerm:
    """One term of the objective: logged as ``train/<name>`` (its unweighted value)."""

    name: str
    weight: float
    fn: TermFn
    supervised: bool = False


def configured_terms(
    training_mode: str,
    self_supervised_terms: dict[str, float],
    supervised_losses: dict[str, float],
    supervised_weight: float = 1.0,
) -> list[WeightedTerm]:
    """The weighted terms of a run: the self-supervised ones unless ``training_mode`` is
    "supervised", the supervised ones (weights times ``supervised_weight`` in "hybrid") unless
    it is "self_supervised". Names are checked against the registries (ValueError names the
    option and the choices)."""
    for option, names, known in (
        ("self_supervised_terms", self_supervised_terms, SELF_SUPERVISED_TERMS),
        ("supervised_losses", supervised_losses, SUPERVISED_LOSSES),
    ):
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"model.{option}: unknown {unknown}; choose from {sorted(known)}")
    terms = []
    if training_mode != "supervised":
        terms += [
            WeightedTerm(name, float(w), SELF_SUPERVISED_TERMS[name])
            for name, w in self_supervised_terms.items()
        ]
    if training_mode != "self_supervised":
        factor = supervised_weight if training_mode == "hybrid" else 1.0
        terms += [
            WeightedTerm(f"sup_{name}", factor * float(w), supervised_term(name), supervised=True)
            for name, w in supervised_losses.items()
        ]
    return terms


@dataclass
class LossTerms:
    """The objective evaluated on one batch.

    Attributes:
        loss: the total, ``sum(weight * value)``: what is minimised.
        values: each term's unweighted value by name (``reprojection``, ``smoothness``,
            ``sup_<name>``).
        disps: the disparities the terms were computed on.
        detail: the view synthesis's intermediates, when asked to keep them.
    """

    loss: Tensor
    values: dict[str, Tensor]
    disps: list[Tensor]
    detail: ObjectiveDetail | None = None


def evaluate_terms(terms: list[WeightedTerm], inputs: TermInputs) -> LossTerms:
    """Every configured term on ``inputs`` and their weighted sum."""
    values: dict[str, Tensor] = {}
    total = inputs.disps[0].new_zeros(()).float()
    for term in terms:
        value = term.fn(inputs)
        values[term.name] = value
        total = total + term.weight * value
    return LossTerms(loss=total, values=values, disps=inputs.disps, detail=inputs.detail)
