"""One command style for mono's tools (synth, export-gt, evaluate, evaluate-pose, export,
predict, benchmark, check-data), as LightningCLI gives fit/validate/test:

* ``--help`` shows every option's default and choices;
* ``--config FILE`` reads options from a YAML mapping (keys are the option names without
  dashes, ``-`` or ``_`` alike; ``base:`` chains as in the training configs); the command line
  wins over the file;
* a bad value is one line on stderr, ``mono <tool>: error: ...``, exit status 2.

No torch here: ``mono --help`` imports this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CONFIG_OPTION = "--config"


class ToolHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "%(default)" not in text and not isinstance(action, argparse._HelpAction):
            text += " (default: %(default)s)"
        return text


class ToolParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and which reads ``--config`` files."""

    def error(self, message: str):  # argparse's own errors: usage + message, two lines
        self.exit(2, f"{self.prog}: error: {message}\n")

    reads_config = False  # True once add_config_option gave this parser --config FILE

    def add_config_option(self) -> None:
        self.reads_config = True
        self.add_argument(
            CONFIG_OPTION,
            metavar="FILE",
            help="YAML file of these options (keys: option names without dashes); the "
            "command line wins over it",
        )

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if self.reads_config and CONFIG_OPTION in [a.split("=")[0] for a in args]:
            self._apply_config(_config_value(args))
        return super().parse_known_args(args, namespace)

    def _apply_config(self, path: str | None) -> None:
        from mono.config_files import ConfigFileError, load_config

        if path is None:
            self.error(f"{CONFIG_OPTION} needs a file")
        if not Path(path).is_file():
            self.error(f"{CONFIG_OPTION} {path}: file not found")
        try:
            values = load_config(path)
        except ConfigFileError as err:
            self.error(f"{CONFIG_OPTION} {err}")
        if not isinstance(values, dict):
            self.error(f"{CONFIG_OPTION} {path}: not a YAML file of options (a mapping)")
        by_name = {
            a.dest.replace("_", "-"): a
            for a in self._actions
            if a.option_strings and a.dest not in ("help", "config")
        }
        for s in self._actions:
            for option in s.option_strings:
                if option.startswith("--"):
                    by_name.setdefault(option[2:], s)
        for key, value in values.items():
            action = by_name.get(str(key).replace("_", "-"))
            if action is None:
                known = ", ".join(sorted(by_name))
                self.error(f"{CONFIG_OPTION} {path}: unknown option {key!r}; known: {known}")
            if action.choices is not None and value not in action.choices:
                choices = ", ".join(map(str, action.choices))
                self.error(f"{CONFIG_OPTION} {path}: {key}: {value!r} is not one of {choices}")
            if action.type is not None and value is not None and not isinstance(value, list):
                try:
                    value = action.type(value)
                except (TypeError, ValueError) as err:
                    self.error(f"{CONFIG_OPTION} {path}: {key}: {value!r}: {err}")
            action.required = False  # given by the file
            for group in self._mutually_exclusive_groups:
                if action in group._group_actions:
                    group.required = False
            self.set_defaults(**{action.dest: value})


def _config_value(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == CONFIG_OPTION:
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith(CONFIG_OPTION + "="):
            return arg.split("=", 1)[1]
    return None
