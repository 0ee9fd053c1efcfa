"""`mono fit` on the synthetic drives re-encoded as videos (and as folders) with a K file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mono.module
from mono.cli import main
from mono.data.synth_video import pixel_K, write_video_tree

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["mp4", "folder"])
def test_fit_on_videos_uses_the_k_file(synthetic_root, tmp_path, monkeypatch, kind):
    root = write_video_tree(synthetic_root, tmp_path / "videos", kind)
    seen = []
    prepare = mono.module.prepare_batch

    def recording_prepare(batch, height, width):
        views = prepare(batch, height, width)
        seen.append((batch.flip.clone(), views.K.clone(), batch.images.shape))
        return views

    monkeypatch.setattr(mono.module, "prepare_batch", recording_prepare)
    run = tmp_path / "run"
    main(
        [
            "fit",
            "--config", str(REPO / "configs" / "synthetic.yaml"),
            "--config", str(REPO / "configs" / "video.yaml"),
            f"--data.root={root}",
            "--data.batch_size=2",
            "--data.num_workers=0",
            f"--trainer.default_root_dir={run}",
            "--trainer.logger=false",
            "--trainer.max_steps=3",
        ]
    )  # fmt: skip
    assert (run / "checkpoints" / "last.ckpt").is_file()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3
    # The K file's pixel K at 256x80, cropped to columns 8..247 (the 3:1 aspect of 192x64)
    # and resized by 192 / 240 = 64 / 80 = 0.8.
    expected = pixel_K(synthetic_root)
    expected[0, 2] -= 8
    expected[:2] *= 0.8
    assert len(seen) == 3
    for flip, K, shape in seen:
        assert shape[:3] == (2, 3, 3)
        for i in range(2):
            K_i = K[i].double().numpy()
            if flip[i]:
                K_i[0, 2] = 192 - K_i[0, 2]  # the mirrored principal point (x -> w - x)
            np.testing.assert_allclose(K_i, expected, rtol=1e-5)
