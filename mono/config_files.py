"""Config files that build on others: a top-level ``base:`` key names the files they change.

``configs/kitti_stereo.yaml`` says ``base: kitti_mono.yaml`` and holds only what differs, so
the trainer, callbacks and logger are written once (``configs/base.yaml``). A ``base`` path is
relative to the file that names it; it may be a list, applied in order, and bases may have
bases. The ``mono`` command replaces each ``--config FILE`` by the chain ``--config BASE ...
--config FILE`` (FILE without its ``base`` key), so jsonargparse applies them as if typed one
after the other: mappings merge key by key, a list (e.g. ``trainer.callbacks``) is replaced as
a whole. No torch here: ``mono --help`` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BASE_KEY = "base"


class ConfigFileError(ValueError):
    """A config file's ``base`` cannot be followed (missing file, a cycle, a bad value)."""


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{path}: not valid YAML ({err})") from None


def config_chain(path: str | Path, _seen: tuple[Path, ...] = ()) -> list[str | dict]:
    """What stands for the config ``path``: each base's chain first, then ``path`` itself, as
    its path when it names no base, else as its settings without the ``base`` key (a dict).

    A path that is not a file is returned unchanged, for jsonargparse to report.
    """
    path = Path(path)
    if not path.is_file():
        return [str(path)]
    content = _read(path)
    if not isinstance(content, dict) or BASE_KEY not in content:
        return [str(path)]
    resolved = path.resolve()
    if resolved in _seen:
        cycle = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigFileError(f"{path}: its bases form a cycle ({cycle})")
    bases = content.pop(BASE_KEY)
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigFileError(f"{path}: '{BASE_KEY}' must be a file name or a list of them")
    chain: list[str | dict] = []
    for base in bases:
        base_path = path.parent / base
        if not base_path.is_file():
            raise ConfigFileError(f"{path}: its base {base_path} does not exist")
        chain += config_chain(base_path, (*_seen, resolved))
    return [*chain, content]


def expand_config_args(args: list[str]) -> list[str]:
    """``args`` with every ``--config FILE`` (or ``--config=FILE``) replaced by its chain."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            value, i = args[i + 1], i + 2
        elif arg.startswith("--config="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        for item in config_chain(value):
            # jsonargparse takes a config's YAML text where it expects its path.
            text = yaml.safe_dump(item, sort_keys=False) if isinstance(item, dict) else item
            out += ["--config", text]
    return out


def _merge(into: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def load_config(path: str | Path) -> dict:
    """The settings of a config file with its bases applied (for tools that read a config
    without LightningCLI, such as ``mono check-data``)."""
    merged: dict = {}
    for item in config_chain(path):
        content = item if isinstance(item, dict) else _read(Path(item))
        if not isinstance(content, dict | None):
            where = path if isinstance(item, dict) else item
            raise ConfigFileError(f"{where}: not a YAML mapping of options")
        _merge(merged, content or {})
    return merged
