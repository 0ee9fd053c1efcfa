"""KITTI evaluation (no Lightning): ground truth, depth metrics per split, pose ATE, commands.

Modules: ``gt`` (split lines, image paths, ground-truth export), ``depth`` (Monodepth2's depth
protocol), ``pose`` (Monodepth2's odometry ATE), ``commands`` (plain-argument entry points),
``folder`` (your own images and depth maps), ``cli`` (the arguments of ``mono export-gt |
evaluate | evaluate-pose``). The metrics themselves live in :mod:`mono.metrics`, shared with
validation during training. Import the submodules themselves (``from mono.evaluation import
gt``): this package imports nothing, so ``mono --help`` (which imports ``cli``) does not pay
for torch.
"""
