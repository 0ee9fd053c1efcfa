"""Dispatch of mono's tool subcommands (everything except fit/validate/test).

Each tool lives in its own module, which defines ``COMMANDS: dict[name, (add_arguments, run)]``;
this table only says where to find it, so ``mono --help`` imports nothing heavy.
"""

from __future__ import annotations

import argparse
import importlib

TOOL_MODULES = {
    "synth": "mono.tools",
    "export-gt": "mono.evaluation.cli",
    "evaluate": "mono.evaluation.cli",
    "evaluate-pose": "mono.evaluation.cli",
    "export": "mono.export",
    "predict": "mono.predict",
    "benchmark": "mono.benchmark",
}


def _add_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (KITTI raw layout + splits/)")
    p.add_argument("--seed", type=int, default=0, help="scene and trajectory seed")
    p.add_argument("--preset", default="default", help="size preset: tiny | default")


def _run_synth(ns: argparse.Namespace) -> None:
    from mono.data.synth import write_dataset

    out = write_dataset(ns.out, seed=ns.seed, preset=ns.preset)
    print(f"synthetic drives in {out} (splits in {out}/splits)")


COMMANDS = {"synth": (_add_synth, _run_synth)}


def _entry(name: str):
    try:
        module = importlib.import_module(TOOL_MODULES[name])
    except ModuleNotFoundError:
        return None
    return getattr(module, "COMMANDS", {}).get(name)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    entry = _entry(name)
    if entry is not None:
        entry[0](parser)


def run(ns: argparse.Namespace) -> None:
    entry = _entry(ns.command)
    if entry is None:
        raise SystemExit(f"mono {ns.command}: not available in this version")
    entry[1](ns)
