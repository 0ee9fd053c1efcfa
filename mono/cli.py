"""The ``mono`` command.

``mono fit|validate|test`` are LightningCLI subcommands over :class:`mono.module.DepthModel`
and :class:`mono.data.datamodule.KittiDataModule` (``--config configs/*.yaml`` plus dotted
overrides such as ``--data.root /data/kitti_raw``). The other subcommands are plain tools.
Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys

LIGHTNING_COMMANDS = ("fit", "validate", "test")

TOOLS_HELP = {
    "synth": "render the synthetic KITTI-layout drives",
    "export-gt": "export KITTI ground-truth depth (gt_depths.npz) for a test split",
    "evaluate": "evaluate depth on a KITTI split (Eigen / Eigen benchmark / benchmark)",
    "evaluate-pose": "evaluate pose (ATE on 5-frame snippets) on a KITTI odometry sequence",
    "export": "export trained networks (pt, torchscript, onnx, monodepth2)",
    "predict": "predict depth for an image, a folder or a video",
    "benchmark": "time a training step phase by phase (data, forward, loss, backward, optimiser)",
}


def _configure_threads() -> None:
    # Two CPU cores with DataLoader workers oversubscribe badly with torch's default threads.
    import torch

    threads = os.environ.get("MONO_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def run_lightning(args: list[str] | None) -> None:
    """LightningCLI over DepthModel and KittiDataModule."""
    from pytorch_lightning.cli import LightningCLI

    from mono.callbacks import (
        PreemptionCheckpoint,
        check_checkpoint_file,
        with_atomic_checkpoint_io,
    )
    from mono.data.datamodule import KittiDataModule
    from mono.module import DepthModel

    class MonoCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("data.height", "model.height")
            parser.link_arguments("data.width", "model.width")
            parser.link_arguments("data.frame_ids", "model.frame_ids")

        def _parse_ckpt_path(self) -> None:
            # LightningCLI reads --ckpt_path's hyper-parameters with torch.load before the
            # trainer's CheckpointIO sees the file: check it first for a clear error.
            subcommand = self.config.get("subcommand")
            ckpt_path = subcommand and self.config[subcommand].get("ckpt_path")
            if ckpt_path and os.path.isfile(ckpt_path):
                check_checkpoint_file(ckpt_path)
            super()._parse_ckpt_path()

        def instantiate_trainer(self, **kwargs):
            # Checkpoints are written atomically unless the config names its own CheckpointIO.
            plugins = self._get(self.config_init, "trainer", default={}).get("plugins")
            return super().instantiate_trainer(plugins=with_atomic_checkpoint_io(plugins), **kwargs)

    MonoCLI(
        DepthModel,
        KittiDataModule,
        args=args,
        save_config_kwargs={"overwrite": True},
        # Always present, whatever the config's callback list: SIGTERM saves last.ckpt.
        trainer_defaults={"callbacks": [PreemptionCheckpoint()]},
        seed_everything_default=0,
        parser_kwargs={"description": "mono: self-supervised monocular depth training"},
    )


def build_tool_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mono",
        description="mono: self-supervised monocular depth (Monodepth2) on Lightning + kornia. "
        "Training: mono fit|validate|test --config CONFIG (see `mono fit --help`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (see `mono {name} --help`)")
    from mono import tools

    for name, help_text in TOOLS_HELP.items():
        tools.add_arguments(name, sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> None:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_threads()
    if argv and argv[0] in LIGHTNING_COMMANDS:
        # LightningCLI reads sys.argv itself when run from the shell (it warns when given both).
        run_lightning(None if from_command_line else argv)
        return
    parser = build_tool_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        raise SystemExit(2)
    from mono import tools

    tools.run(ns)


if __name__ == "__main__":
    main()
