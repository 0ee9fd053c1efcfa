"""Inputs that used to give a plausible-looking wrong answer are refused with a named cause."""

import pytest

from mono.cli import main


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_scoring_without_weights_is_refused(tmp_path, subcommand):
    with pytest.raises(SystemExit) as info:
        main([subcommand, "--data.root", str(tmp_path), "--trainer.logger=false"])
    assert info.value.code == (
        f"mono {subcommand}: error: no --ckpt_path given, so the scores would be those of "
        "randomly initialised weights; pass --ckpt_path (e.g. runs/synthetic/checkpoints/"
        "last.ckpt) or --model.init_weights (a Monodepth2 weights folder)"
    )


def test_init_weights_are_what_test_scores(synthetic_root, tmp_path, capsys):
    # `mono test --model.init_weights DIR` scores the folder's weights, as --ckpt_path does.
    from pathlib import Path

    import pytorch_lightning as pl
    import torch

    from mono.module import DepthModel
    from mono.nets.monodepth2_format import save_monodepth2

    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"
    torch.manual_seed(123)
    model = DepthModel(
        64, 192, pretrained=False, frame_ids=["0", "-1", "1", "s"], stereo_baseline="calib",
        min_depth=1.0, eval_crop="none",
    )  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    settings = {"min_depth": 1.0, "max_depth": 100.0, "metric_scale": 1.0}
    save_monodepth2(tmp_path / "w", model.depth, 64, 192, model.pose, True, settings)
    common = [
        "test", "--config", str(config), f"--data.root={synthetic_root}",
        "--data.synthesize=null", "--data.num_workers=0", "--data.batch_size=4",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        "--trainer.callbacks=[]", "--trainer.limit_test_batches=1",
    ]  # fmt: skip
    scores = []
    for source in (f"--ckpt_path={tmp_path / 'm.ckpt'}", f"--model.init_weights={tmp_path / 'w'}"):
        capsys.readouterr()
        main([*common, source])
        line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("model "))
        scores.append(line.split()[1:])
    assert scores[0] == scores[1]
