"""A pinhole camera whose intrinsics are learned with the networks, for videos without any.

Gordon et al., "Depth from Videos in the Wild" (ICCV 2019), learn the focal lengths and
principal point through the same view-synthesis loss as depth and motion; Fang et al. (WACV
2022) show the self-calibration converges from a rough initial field of view. Here the camera is
one set of four numbers in normalised units (the convention of :mod:`mono.types`: fx, cx divided
by the width, fy, cy by the height), so it applies at any resolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from mono.geometry import scale_intrinsics


def focal_from_hfov(hfov_deg: float, height: int, width: int) -> tuple[float, float]:
    """Normalised ``(fx, fy)`` of square pixels with a horizontal field of view of ``hfov_deg``.

    ``fx = 0.5 / tan(hfov / 2)`` (a fraction of the width); the same focal in pixels,
    ``fx * width``, is ``fy * height``.

    Raises:
        ValueError: ``hfov_deg`` outside (0, 180), naming ``model.initial_hfov_deg``.
    """
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"model.initial_hfov_deg={hfov_deg:g} must be in (0, 180) degrees")
    fx = 0.5 / math.tan(math.radians(hfov_deg) / 2.0)
    return fx, fx * width / height


class LearnedIntrinsics(nn.Module):
    """One camera's normalised intrinsics as parameters, shared by every sequence trained on.

    The focal lengths are stored as their logarithms, so they stay positive and a step changes
    them by a fraction of their size; the principal point starts at the image centre. With
    square pixels (nearly every camera) one focal length in pixels serves both axes of the
    images as they were recorded: the vertical one is then learned even from video that never
    pitches, where the loss alone cannot tell it (forward motion and yaw move pixels the same
    whatever fy is). Normalised, ``fy = fx * w / h`` with (h, w) the recorded size, whatever
    size the network sees (KITTI frames are squeezed from 1242x375 to 640x192).

    Args:
        height, width: training input size (fixes fy from the same focal in pixels as fx).
        initial_hfov_deg: horizontal field of view to start from, degrees in (0, 180).
        square_pixels: learn one focal length in pixels (fy = fx * width / height) instead of
            two.

    Attributes:
        log_focal: ``log(fx)`` (1,) with square pixels, else ``log(fx), log(fy)`` (2,),
            normalised.
        principal_point: (2,) ``cx, cy`` normalised, starting at (0.5, 0.5).
        aspect: width / height of the recorded images: the training size until a batch's
            native sizes are seen (a buffer, saved with the parameters).
    """

    def __init__(
        self, height: int, width: int, initial_hfov_deg: float = 60.0, square_pixels: bool = True
    ) -> None:
        super().__init__()
        fx, fy = focal_from_hfov(initial_hfov_deg, height, width)
        focal = [fx] if square_pixels else [fx, fy]
        self.log_focal = nn.Parameter(torch.tensor([math.log(f) for f in focal]))
        self.principal_point = nn.Parameter(torch.tensor([0.5, 0.5]))
        self.register_buffer("aspect", torch.tensor(width / height))

    def normalised(self) -> Tensor:
        """(3, 3) normalised K: row 0 divided by the width, row 1 by the height."""
        return self._normalised(self.aspect)

    def _normalised(self, aspect: Tensor) -> Tensor:
        focal = self.log_focal.exp()
        fx = focal[0]
        fy = focal[1] if focal.numel() == 2 else fx * aspect
        cx, cy = self.principal_point.unbind()
        zero, one = torch.zeros_like(fx), torch.ones_like(fx)
        return torch.stack(
            [
                torch.stack([fx, zero, cx]),
                torch.stack([zero, fy, cy]),
                torch.stack([zero, zero, one]),
            ]
        )

    def forward(
        self,
        batch_size: int,
        height: int,
        width: int,
        flip: Tensor | None = None,
        sizes: Tensor | None = None,
    ) -> Tensor:
        """(B, 3, 3) pixel K at (height, width), differentiable in the parameters.

        Args:
            batch_size: B.
            height, width: image size in pixels.
            flip: optional (B,) bool, samples mirrored horizontally: their principal point is
                mirrored too (cx -> 1 - cx), as the data pipeline does for a known K.
            sizes: optional (B, 2) recorded (h, w) of each sample: with square pixels, fy
                follows fx at that aspect (and the buffer ``aspect`` remembers the batch's).
        """
        if sizes is None:
            K = self.normalised().unsqueeze(0).expand(batch_size, 3, 3)
        else:
            aspect = (sizes[:, 1] / sizes[:, 0]).to(self.log_focal)
            with torch.no_grad():
                self.aspect.copy_(aspect.mean())
            K = torch.stack([self._normalised(a) for a in aspect.unbind()])
        if flip is not None:
            mirrored = K.clone()
            mirrored[:, 0, 2] = 1.0 - K[:, 0, 2]
            K = torch.where(flip.view(-1, 1, 1).to(K.device), mirrored, K)
        return scale_intrinsics(K, height, width)

    def describe(self) -> dict[str, float]:
        """``fx_norm, fy_norm, cx_norm, cy_norm`` as plain numbers (for logs and exports)."""
        K = self.normalised().detach()
        return {
            "fx_norm": float(K[0, 0]),
            "fy_norm": float(K[1, 1]),
            "cx_norm": float(K[0, 2]),
            "cy_norm": float(K[1, 2]),
        }


def learned_K_from_state(
    state: dict[str, Tensor], prefix: str = "intrinsics."
) -> np.ndarray | None:
    """(3, 3) float32 normalised K stored in a model's state dict, or None when it has none.

    Args:
        state: a state dict (e.g. a checkpoint's ``state_dict``).
        prefix: where :class:`LearnedIntrinsics` sits in it (``DepthModel.intrinsics``).
    """
    if f"{prefix}log_focal" not in state:
        return None
    square = state[f"{prefix}log_focal"].numel() == 1
    camera = LearnedIntrinsics(1, 1, square_pixels=square)
    camera.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return camera.normalised().detach().numpy().astype(np.float32)
