"""`focoos version`: the installed version."""

from __future__ import annotations

import argparse

NAME = "version"
HELP = "print the version"
DESCRIPTION = "Print the version of the installed focoos package."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from focoos.version import __version__

    print(f"focoos version: {__version__}")
    return 0
