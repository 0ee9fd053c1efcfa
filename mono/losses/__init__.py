"""Losses: Monodepth2's self-supervised terms and supervised depth terms.

Only torch is imported here (see the dependency rule in :mod:`mono`).
"""

from mono.losses.photometric import (
    MinReprojection,
    add_tiebreak_noise,
    min_reprojection,
    photometric_error,
    photometric_error_to_target,
    predictive_mask_loss,
    smoothness,
    ssim,
)
from mono.losses.supervised import (
    SUPERVISED_LOSSES,
    depth_ssim_loss,
    get_supervised_loss,
    gradient_matching_loss,
    kitti_silog_loss,
    l1_depth_loss,
    l2_depth_loss,
    silog_loss,
)

__all__ = [
    "SUPERVISED_LOSSES",
    "MinReprojection",
    "add_tiebreak_noise",
    "depth_ssim_loss",
    "get_supervised_loss",
    "gradient_matching_loss",
    "kitti_silog_loss",
    "l1_depth_loss",
    "l2_depth_loss",
    "min_reprojection",
    "photometric_error",
    "photometric_error_to_target",
    "predictive_mask_loss",
    "silog_loss",
    "smoothness",
    "ssim",
]
