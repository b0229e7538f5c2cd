"""`focoos settings`: where this installation keeps things, and how to change it."""

from __future__ import annotations

import argparse

NAME = "settings"
HELP = "print the settings and the environment variables that change them"
DESCRIPTION = ("Print each setting (models, datasets, predictions, cache and exports folders, the hub) as the "
               "environment variable that changes it and its current value.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from focoos import settings

    print("Current focoos settings:")
    for name, value in settings.describe().items():
        print(f"{name}={value}")
    return 0
