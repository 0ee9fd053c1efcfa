"""mono: self-supervised monocular depth (Monodepth2) on PyTorch Lightning and kornia.

Dependency rule (data flows top to bottom; a module imports mono modules of its own layer or
of the layers above it, never below; ``tests/test_layers.py`` checks every import):

    types, frame_ids, progress,             typed containers (torch only); frame ids parsed
      model_zoo, config_files                 once; progress bars, published weights by name,
                                              config files with bases (no torch in the last 4)
    geometry, losses, metrics, visualize    pure functions (torch + kornia; numpy, matplotlib)
    nets/                                   depth and pose networks (torch + torchvision)
    data/                                   layouts (KITTI raw, KITTI odometry, videos;
                                              registry.py) + synthetic drives -> Sample -> Batch
    objective, loss_terms, checkpoint       the view-synthesis loss; the objective as weighted,
                                              registered terms; networks read back
    module, callbacks, checkpointing,       training: the LightningModule, its callbacks, runs
      stopping, rng_state,                    that survive (random states included), timing
      benchmark(_report), inspect             and inspection of the loss
    evaluation/, export, predict, tools     user-facing tools (no Lightning)
    cli                                     the `mono` command; nothing imports it

Only the training layer, ``data/datamodule.py`` and ``cli`` import Lightning.
"""

import os as _os

# With DataLoader workers or other load on few cores, OpenMP threads that spin while waiting
# slow torch's CPU kernels down by an order of magnitude; passive waiting avoids it. It must be
# set before torch is first imported, which importing any mono module does after this line.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
