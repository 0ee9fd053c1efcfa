"""PoseCNN's translation is relative to the mean inverse depth, as in Monodepth2.

Monodepth2's ``generate_images_pred`` rebuilds the transform of a "posecnn" pose network at
every scale as ``transformation_from_parameters(axisangle, translation * mean_inv_depth,
invert)``, where ``mean_inv_depth`` is the spatial mean of ``1 / depth`` of the depth it warps
with (after Wang et al. 2018, arXiv:1712.00175). Scaling ``t`` in ``[R | t]`` scales the
translation of the inverse ``[R^T | -R^T t]`` by the same factor, so scaling the translation
column of ``T_src_tgt`` is the same thing, for past and future frames alike.
"""

import math

import torch

from mono.geometry import pose_vec_to_mat, scale_translation
from mono.module import DepthModel
from mono.objective import ObjectiveConfig, view_synthesis_loss


def test_scale_translation_by_hand():
    # 90 degrees about y, t = (1, 2, 3); factors 0.5 and 2 for a batch of two, two sources.
    axisangle = torch.tensor([[0.0, math.pi / 2, 0.0]])
    t = torch.tensor([[1.0, 2.0, 3.0]])
    T = pose_vec_to_mat(axisangle, t).expand(2, 2, 4, 4)
    out = scale_translation(T, torch.tensor([0.5, 2.0]), [True, False])
    assert torch.allclose(out[0, 0, :3, 3], torch.tensor([0.5, 1.0, 1.5]))
    assert torch.allclose(out[1, 0, :3, 3], torch.tensor([2.0, 4.0, 6.0]))
    assert torch.equal(out[:, 1], T[:, 1])  # an unflagged source (the stereo frame) is kept
    assert torch.equal(out[..., :3, :3], T[..., :3, :3])
    # the same as Monodepth2's rebuild with a scaled translation, also for an inverted pose
    inverted = pose_vec_to_mat(axisangle, t, invert=True)[:, None]
    rebuilt = pose_vec_to_mat(axisangle, 0.5 * t, invert=True)
    assert torch.allclose(scale_translation(inverted, torch.tensor([0.5]), [True])[:, 0], rebuilt)


def test_posecnn_objective_warps_with_translation_times_mean_inverse_depth():
    torch.manual_seed(0)
    b, h, w = 2, 16, 24
    color = torch.rand(b, 3, 3, h, w)  # target, frame 1, stereo partner
    # sigmoid 0.5 everywhere: 1 / depth = 1 / 100 + (1 / 0.1 - 1 / 100) * 0.5 = 5.005
    disps = [torch.full((b, 1, h // 2**s, w // 2**s), 0.5) for s in range(2)]
    T = pose_vec_to_mat(torch.zeros(b * 2, 3), torch.randn(b * 2, 3) * 0.1).view(b, 2, 4, 4)
    K = torch.tensor([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]]).expand(b, 3, 3)
    ids = ["1", "s"]
    posecnn = ObjectiveConfig(scale_translation_by_mean_inv_depth=True, disable_automasking=True)
    plain = ObjectiveConfig(disable_automasking=True)
    got, detail = view_synthesis_loss(posecnn, color, disps, T, K, ids, keep=True)
    by_hand = T.clone()
    by_hand[:, 0, :3, 3] *= 5.005
    want, want_detail = view_synthesis_loss(plain, color, disps, by_hand, K, ids, keep=True)
    assert torch.allclose(got["loss"], want["loss"])
    for s in range(2):
        assert torch.allclose(detail.scales[s].warped, want_detail.scales[s].warped, atol=1e-6)
    unscaled, _ = view_synthesis_loss(plain, color, disps, T, K, ids)
    assert not torch.allclose(got["loss"], unscaled["loss"])


def test_only_the_posecnn_model_scales_its_translation():
    for kind, expected in (("posecnn", True), ("separate", False), ("shared", False)):
        model = DepthModel(64, 192, pretrained=False, pose_model_type=kind)
        assert model.objective.scale_translation_by_mean_inv_depth is expected, kind
