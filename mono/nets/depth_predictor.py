"""What a depth network's output means: the base class of every depth network.

A depth network predicts sigmoid disparities; on their own they are numbers in (0, 1). The
network carries what turns them into depth, so that training, validation, prediction, export
and evaluation all read one owner:

* ``min_depth`` and ``max_depth``: the range sigmoid disparity is mapped into
  (:func:`mono.geometry.disp_to_depth`, Monodepth2's 0.1 .. 100 m by default);
* ``metric_scale``: metres per unit of that depth (5.4 for Monodepth2's 0.1 m stereo baseline
  convention, 1 for a metric baseline), or None when the depth has no metric scale
  (monocular training: evaluate with median scaling).

They are plain attributes, not tensors: a state dict holds weights only, and the networks'
builders (:func:`mono.nets.depth_net_from_options`) and ``settings()`` carry them instead.
"""

from __future__ import annotations

from torch import Tensor, nn

from mono.geometry import disp_to_depth
from mono.types import DepthOutput

MONODEPTH2_DEPTH_RANGE = (0.1, 100.0)


class DepthPredictor(nn.Module):
    """Base of the depth networks: ``forward(image) -> DepthOutput`` of sigmoid disparities,
    finest first; :meth:`to_depth` and :meth:`predict_depth` give depth.

    Args:
        min_depth: depth, in the network's units, at disparity 1 (> 0).
        max_depth: depth at disparity 0 (> ``min_depth``).
        metric_scale: metres per unit of depth, or None when the depth is up to scale.
    """

    def __init__(
        self,
        min_depth: float = MONODEPTH2_DEPTH_RANGE[0],
        max_depth: float = MONODEPTH2_DEPTH_RANGE[1],
        metric_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.set_meaning(min_depth, max_depth, metric_scale)

    def set_meaning(
        self, min_depth: float, max_depth: float, metric_scale: float | None = None
    ) -> None:
        """Set the depth range and metric scale (e.g. read from a weights folder's metadata)."""
        if not 0 < min_depth < max_depth:
            raise ValueError(
                f"depth range min_depth={min_depth}, max_depth={max_depth}: "
                "need 0 < min_depth < max_depth"
            )
        if metric_scale is not None and not metric_scale > 0:
            raise ValueError(f"metric_scale={metric_scale} must be > 0 (or None: up to scale)")
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.metric_scale = None if metric_scale is None else float(metric_scale)

    def range_settings(self) -> dict:
        """The depth meaning as keyword arguments of the constructor (part of ``settings()``)."""
        return {
            "min_depth": self.min_depth,
            "max_depth": self.max_depth,
            "metric_scale": self.metric_scale,
        }

    def scaled_disp(self, disp: Tensor) -> Tensor:
        """1 / depth for a sigmoid disparity (what Monodepth2's evaluation reads)."""
        return disp_to_depth(disp, self.min_depth, self.max_depth)[0]

    def to_depth(self, disp: Tensor) -> Tensor:
        """Depth, in the network's units, for a sigmoid disparity of any shape."""
        return disp_to_depth(disp, self.min_depth, self.max_depth)[1]

    def predict_depth(self, image: Tensor) -> Tensor:
        """(B, 1, H, W) depth of the finest scale for a (B, 3, H, W) image in [0, 1]."""
        output: DepthOutput = self(image)
        return self.to_depth(output.disps[0])
