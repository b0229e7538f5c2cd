"""Calling a command from Python: keyword arguments become the command's own options, parsed by its own parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from enum import Enum
from typing import Any

from focoos.errors import FocoosError


def _token(value: Any) -> str:
    """A value as typed on the command line: an enum by its value, an image size (h, w) as h,w."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (tuple, list)):
        return ",".join(str(part) for part in value)
    return str(value)


def namespace(command: str, **values: Any) -> argparse.Namespace:
    """The Namespace `focoos COMMAND` builds from these options (option dest -> value; None: not given).

    Each value goes through its option as typed text, so the option's type and choices check it; a value with no
    option of its own (e.g. a TrainerArgs field `val` does not offer) is set on the Namespace as it is."""
    from focoos.cli.app import build_parser

    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    actions: dict[str, argparse.Action] = {}
    for action in sub._actions:
        if action.option_strings:
            actions.setdefault(action.dest, action)  # the option's own name, not a former one
    argv: list[str] = []
    extra: dict[str, Any] = {}
    for dest, value in values.items():
        action = actions.get(dest)
        if value is None:
            continue
        if action is None:
            extra[dest] = value
        elif isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0 if value else 1])
        elif action.nargs == 0:  # an on/off flag
            if value:
                argv.append(action.option_strings[0])
        else:
            argv += [action.option_strings[0], _token(value)]
    sub.exit_on_error = False
    try:
        args = sub.parse_args(argv)
    except argparse.ArgumentError as exc:
        raise FocoosError(f"{command}: {exc}") from None
    for dest, value in extra.items():
        setattr(args, dest, value)
    args.command = command
    return args


# Focoos' dataset-command parameters that are options of their own; the others are TrainerArgs fields.
DATASET_PARAMETERS = {"model_name": "model", "dataset_name": "dataset", "dataset_layout": "dataset_layout",
                      "im_size": "im_size", "datasets_dir": "datasets_dir"}


def run_dataset_command(command: str, run: Callable[[argparse.Namespace], int], values: dict[str, Any]) -> None:
    """train_command / val_command: Focoos' parameters (a call's locals()) as the command's options, then its run."""
    options = {DATASET_PARAMETERS.get(name, name): value for name, value in values.items()}
    run(namespace(command, **options))
