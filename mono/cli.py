"""The ``mono`` command.

``mono fit|validate|test`` are LightningCLI subcommands over :class:`mono.module.DepthModel`
and :class:`mono.data.datamodule.KittiDataModule` (``--config configs/*.yaml`` plus dotted
overrides such as ``--data.root /data/kitti_raw``). The other subcommands are plain tools.
``mono --help``, ``mono --version`` and ``mono <tool> --help`` import no torch (see
:mod:`mono.tools`). Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys

from mono import __version__
from mono.tool_parser import CONFIG_OPTION, ToolHelpFormatter, ToolParser

LIGHTNING_COMMANDS = ("fit", "validate", "test")

TOOLS_HELP = {
    "synth": "render the synthetic KITTI-layout drives",
    "export-gt": "export KITTI ground-truth depth (gt_depths.npz) for a test split",
    "evaluate": "evaluate depth on a KITTI split (Eigen / Eigen benchmark / benchmark)",
    "evaluate-pose": "evaluate pose (ATE on 5-frame snippets) on a KITTI odometry sequence",
    "export": "export trained networks (pt, torchscript, onnx, monodepth2)",
    "predict": "predict depth for an image, a folder or a video",
    "benchmark": "time a training step phase by phase (data, forward, loss, backward, optimiser)",
    "check-data": "check every file a config's train/val splits need (--deep decodes every image)",
}


def _configure_threads() -> None:
    # Two CPU cores with DataLoader workers oversubscribe badly with torch's default threads.
    import torch

    threads = os.environ.get("MONO_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def run_lightning(args: list[str] | None) -> None:
    """LightningCLI over DepthModel and KittiDataModule."""
    from jsonargparse.typing import register_type
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

    from mono.callbacks import RunSummary
    from mono.checkpointing import (
        check_checkpoint_file,
        check_run_folder,
        place_checkpoints,
        remove_partial_files,
        with_atomic_checkpoint_io,
    )
    from mono.data.datamodule import KittiDataModule
    from mono.frame_ids import FrameId, frame_id
    from mono.model_zoo import ModelDownloadError, resolve_weights
    from mono.module import DepthModel
    from mono.stopping import NonFiniteGuard, PreemptionCheckpoint

    # Every frame id passes through frame_id (the check never matches), so `[0, -1, 1]` as
    # Monodepth2 users type it is accepted, and configs, --print_config and checkpoints all
    # hold the strings "0", "-1", "1" that the data and model layers expect.
    register_type(FrameId, serializer=str, deserializer=frame_id, type_check=lambda v, t: False)

    class MonoArgumentParser(LightningArgumentParser):
        def print_usage(self, file=None) -> None:
            # Called only before a parse error: the full usage of `mono fit` is some 70 lines,
            # which would bury the one line that says what was wrong (`--help` still has it).
            prog = self.prog.replace(" [options]", "")
            (file or sys.stdout).write(f"usage: {prog} [options]\n")

    class MonoCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("data.height", "model.height")
            parser.link_arguments("data.width", "model.width")
            parser.link_arguments("data.frame_ids", "model.frame_ids")
            # One option places the whole run: the logger writes below the run folder too.
            parser.link_arguments("trainer.default_root_dir", "trainer.logger.init_args.save_dir")
            parser.link_arguments("data.stereo_baseline", "model.stereo_baseline")

        def before_instantiate_classes(self) -> None:
            subcommand = self.config.get("subcommand")
            model_config = self.config[subcommand]["model"]
            if model_config.get("init_weights"):
                # A published model's name (mono_640x192, ...) becomes its cached folder.
                try:
                    folder = resolve_weights(model_config["init_weights"], "--model.init_weights")
                except ModelDownloadError as err:
                    raise SystemExit(f"mono {subcommand}: error: {err}") from None
                model_config["init_weights"] = str(folder)
            # Scoring fresh weights prints a table that looks like a result but is noise.
            if subcommand in ("test", "validate"):
                config = self.config[subcommand]
                if not config.get("ckpt_path") and not config["model"].get("init_weights"):
                    raise SystemExit(
                        f"mono {subcommand}: error: no --ckpt_path given, so the scores would be "
                        "those of randomly initialised weights; pass --ckpt_path (e.g. "
                        "runs/synthetic/checkpoints/last.ckpt) or --model.init_weights (a "
                        "Monodepth2 weights folder)"
                    )

        def _parse_ckpt_path(self) -> None:
            # LightningCLI reads --ckpt_path's hyper-parameters with torch.load before the
            # trainer's CheckpointIO sees the file: check it first for a clear error.
            subcommand = self.config.get("subcommand")
            ckpt_path = subcommand and self.config[subcommand].get("ckpt_path")
            if ckpt_path and os.path.isfile(ckpt_path):
                check_checkpoint_file(ckpt_path)
            super()._parse_ckpt_path()

        def instantiate_trainer(self, **kwargs):
            trainer_config = self._get(self.config_init, "trainer", default={})
            _drop_switched_off_callbacks(trainer_config, ModelCheckpoint, LearningRateMonitor)
            # Checkpoints are written atomically unless the config names its own CheckpointIO.
            plugins = with_atomic_checkpoint_io(trainer_config.get("plugins"))
            trainer = super().instantiate_trainer(plugins=plugins, **kwargs)
            place_checkpoints(trainer)
            if self.subcommand == "fit" and not trainer.fast_dev_run:
                removed = remove_partial_files(trainer)
                for folder in sorted({path.parent for path in removed}):
                    count = sum(path.parent == folder for path in removed)
                    print(f"removed {count} unfinished checkpoint file(s) in {folder}", flush=True)
                if not self._get(self.config, "ckpt_path"):
                    check_run_folder(trainer)
            return trainer

    MonoCLI(
        DepthModel,
        KittiDataModule,
        args=args,
        save_config_kwargs={"overwrite": True},
        # Always present, whatever the config's callback list: SIGTERM/SIGINT save last.ckpt,
        # a NaN stops the run before it reaches a checkpoint, and the run says where it writes.
        trainer_defaults={"callbacks": [PreemptionCheckpoint(), NonFiniteGuard(), RunSummary()]},
        seed_everything_default=0,
        # One way to set the optimiser: model.lr and the StepLR options (LightningCLI's own
        # --optimizer would silently replace both).
        auto_configure_optimizers=False,
        parser_class=MonoArgumentParser,
        parser_kwargs={
            "prog": "mono",
            "description": "mono: self-supervised monocular depth training",
        },
    )


def _drop_switched_off_callbacks(trainer_config: dict, checkpoint_type, lr_monitor_type) -> None:
    """Honour ``--trainer.enable_checkpointing false`` and ``--trainer.logger false`` over a
    config's callback list (Lightning refuses checkpoint callbacks without checkpointing, and a
    learning-rate monitor without a logger)."""
    callbacks = trainer_config.get("callbacks") or []
    if trainer_config.get("enable_checkpointing") is False:
        callbacks = [c for c in callbacks if not isinstance(c, checkpoint_type)]
    if trainer_config.get("logger") is False:
        callbacks = [c for c in callbacks if not isinstance(c, lr_monitor_type)]
    if "callbacks" in trainer_config:
        trainer_config["callbacks"] = callbacks


def build_tool_parser() -> argparse.ArgumentParser:
    parser = ToolParser(
        prog="mono",
        description="mono: self-supervised monocular depth (Monodepth2) on Lightning + kornia. "
        "Training: mono fit|validate|test --config CONFIG (see `mono fit --help`).",
    )
    parser.add_argument("--version", action="version", version=f"mono {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (see `mono {name} --help`)")
    from mono import tools

    for name, help_text in TOOLS_HELP.items():
        tool = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=ToolHelpFormatter
        )
        tools.add_arguments(name, tool)
        if not any(CONFIG_OPTION in a.option_strings for a in tool._actions):
            tool.add_config_option()
    return parser


def _exit_code(err: Exception) -> int | None:
    """The exit status of a run that stopped on purpose, or None for a real crash."""
    from mono.checkpointing import RunFolderError
    from mono.stopping import NonFiniteTrainingError, TrainingInterrupted

    if isinstance(err, TrainingInterrupted):
        return 130  # the shell's status for Ctrl-C
    if isinstance(err, RunFolderError):
        return 2
    if isinstance(err, NonFiniteTrainingError):
        return 1
    return None


def main(argv: list[str] | None = None) -> None:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from mono.config_files import ConfigFileError, expand_config_args

        try:
            expanded = expand_config_args(argv)
        except ConfigFileError as err:
            raise SystemExit(f"mono {argv[0]}: error: {err}") from None
        if from_command_line and expanded != argv:
            sys.argv[1:] = expanded  # LightningCLI reads the command line itself (see below)
        argv = expanded
        _configure_threads()
        # LightningCLI reads sys.argv itself when run from the shell (it warns when given both).
        try:
            run_lightning(None if from_command_line else argv)
        except Exception as err:
            code = _exit_code(err)
            if code is None or not from_command_line:
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(code) from None
        return
    parser = build_tool_parser()
    ns = parser.parse_args(argv)  # --help and --version exit here, before torch is imported
    if ns.command is None:
        parser.print_help()
        raise SystemExit(2)
    from mono import tools

    _configure_threads()
    tools.run(ns)


if __name__ == "__main__":
    main()
