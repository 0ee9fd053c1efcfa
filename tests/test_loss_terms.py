"""The objective as registered, weighted terms: Monodepth2's loss by default, a new term is one
function and one registry line, and bad names are refused with the choices."""

import pytest
import torch

from mono import loss_terms
from mono.data.datamodule import KittiDataModule
from mono.module import DepthModel
from mono.objective import view_synthesis_loss

H, W = 64, 192


@pytest.fixture(scope="module")
def batch(synthetic_root):
    dm = KittiDataModule(
        root=str(synthetic_root), split="splits", height=H, width=W,
        frame_ids=["0", "-1", "1"], batch_size=2, num_workers=0, intrinsics="calib",
    )  # fmt: skip
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def _loss(model, views):
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)  # the same auto-mask tie-break noise
        return model.compute_loss(views)


def test_default_terms_are_monodepth2s_loss(batch):
    torch.manual_seed(0)
    model = DepthModel(H, W, pretrained=False, disparity_smoothness=0.02).eval()
    assert [(t.name, t.weight) for t in model.terms] == [("reprojection", 1), ("smoothness", 0.02)]
    views = model.on_after_batch_transfer(batch)
    terms = _loss(model, views)
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        disps = model.depth(views.color_aug[:, 0]).disps
        T = model.predict_poses(views)
        whole, _ = view_synthesis_loss(model.objective, views.color, disps, T, views.K, ["-1", "1"])
    torch.testing.assert_close(terms.loss, whole["loss"], rtol=1e-6, atol=0)
    torch.testing.assert_close(terms.values["reprojection"], whole["reprojection"])
    torch.testing.assert_close(0.02 * terms.values["smoothness"], whole["smoothness"])


def test_a_registered_term_is_configured_by_name(batch, monkeypatch):
    def mean_disparity(inputs):
        return inputs.disps[0].mean()

    terms = {**loss_terms.SELF_SUPERVISED_TERMS, "mean_disparity": mean_disparity}
    monkeypatch.setattr(loss_terms, "SELF_SUPERVISED_TERMS", terms)
    torch.manual_seed(0)
    model = DepthModel(
        H, W, pretrained=False,
        self_supervised_terms={"reprojection": 1.0, "mean_disparity": 0.5},
    ).eval()  # fmt: skip
    views = model.on_after_batch_transfer(batch)
    out = _loss(model, views)
    assert set(out.values) == {"reprojection", "mean_disparity"}
    assert out.values["mean_disparity"] == out.disps[0].mean()
    want = out.values["reprojection"] + 0.5 * out.values["mean_disparity"]
    torch.testing.assert_close(out.loss, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"self_supervised_terms": {"reprojektion": 1.0}},
            r"model.self_supervised_terms: unknown \['reprojektion'\]; "
            r"choose from \['reprojection', 'smoothness'\]",
        ),
        (
            {"training_mode": "hybrid", "supervised_losses": {"huber": 1.0}},
            r"model.supervised_losses: unknown \['huber'\]; choose from \[",
        ),
    ],
)
def test_unknown_term_names_the_option_and_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DepthModel(H, W, pretrained=False, **kwargs)
