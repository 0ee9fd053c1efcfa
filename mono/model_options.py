"""Checks of the LightningModule's options that need nothing but their values, so that a bad
value is refused with one line naming the option before any network is built."""

from __future__ import annotations

from collections.abc import Mapping

from mono.frame_ids import parse_frame_ids
from mono.nets import DEPTH_NETS, POSE_KINDS, check_input_size

TRAINING_MODES = ("self_supervised", "supervised", "hybrid")


def check_model_options(o: Mapping) -> None:
    """Raise ValueError naming the option (``model.<name>``) for the first bad value of the
    :class:`~mono.module.DepthModel` options ``o`` (its hyper-parameters)."""
    if not 0 < o["min_depth"] < o["max_depth"]:
        raise ValueError(
            f"model.min_depth={o['min_depth']}, model.max_depth={o['max_depth']}: "
            "need 0 < min_depth < max_depth"
        )
    low_high = list(o["gt_depth_range"])
    if len(low_high) != 2 or not 0 <= low_high[0] < low_high[1]:
        raise ValueError(f"model.gt_depth_range={low_high}: need [low, high], 0 <= low < high")
    for name in (
        "automask_warmup_steps",
        "automask_ramp_steps",
        "lr_warmup_steps",
        "max_skipped_nonfinite",
    ):
        if o[name] < 0:
            raise ValueError(f"model.{name}={o[name]} must be >= 0")
    for name in ("pose_lr_scale", "masked_pose_lr_scale"):
        if not o[name] > 0:
            raise ValueError(f"model.{name}={o[name]} must be > 0")
    if o["training_mode"] not in TRAINING_MODES:
        raise ValueError(
            f"model.training_mode='{o['training_mode']}': "
            "choose self_supervised, supervised or hybrid"
        )
    if o["pose_model_type"] not in POSE_KINDS:
        raise ValueError(
            f"model.pose_model_type='{o['pose_model_type']}': choose from {list(POSE_KINDS)}"
        )
    depth_net = o["depth_net"]
    if depth_net not in DEPTH_NETS:
        raise ValueError(f"model.depth_net='{depth_net}': choose from {sorted(DEPTH_NETS)}")
    if depth_net == "resnet":  # the Eigen net takes any size
        try:
            check_input_size(o["height"], o["width"])
        except ValueError as err:
            raise ValueError(f"data.height/data.width (model.height/width): {err}") from None
    self_supervised = o["training_mode"] != "supervised"
    if o["predictive_mask"] and self_supervised and depth_net != "resnet":
        raise ValueError("model.predictive_mask needs model.depth_net='resnet'")
    temporal = bool(parse_frame_ids(o["frame_ids"], name="model.frame_ids").temporal)
    if o["pose_model_type"] == "shared" and self_supervised and temporal and depth_net != "resnet":
        raise ValueError("model.pose_model_type='shared' needs model.depth_net='resnet'")
    if o["learn_intrinsics"] and not self_supervised:
        raise ValueError(
            "model.learn_intrinsics needs training_mode 'self_supervised' or 'hybrid': "
            "supervised training does not warp"
        )
