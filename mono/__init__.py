"""mono: self-supervised monocular depth (Monodepth2) on PyTorch Lightning and kornia.

Dependency rule (data flows top to bottom; a layer imports only from layers above it):

    types            typed containers (torch only)
    data/            KITTI raw + synthetic drives -> Batch; datamodule.py is the only
                     Lightning import in data/
    nets/            depth and pose networks (torch + torchvision)
    geometry, losses, metrics   pure functions (torch + kornia; numpy in metrics)
    objective        Monodepth2's view-synthesis loss built from geometry + losses
    module, callbacks           the LightningModule and its callbacks (Lightning)
    benchmark        the module's training step timed phase by phase (Lightning)
    evaluate, export, predict, inspect, tools   user-facing tools (no Lightning)
    cli              the `mono` command; nothing imports it

    progress and model_zoo (progress bars; published weights by name) import neither torch
    nor other mono modules, so any layer may use them.
"""

import os as _os

# With DataLoader workers or other load on few cores, OpenMP threads that spin while waiting
# slow torch's CPU kernels down by an order of magnitude; passive waiting avoids it. It must be
# set before torch is first imported, which importing any mono module does after this line.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
