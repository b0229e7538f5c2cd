"""The `focoos` parser and dispatch: every command comes from focoos.cli.commands, registered alike."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from focoos.errors import FocoosError
from focoos.version import __version__

from .commands import COMMANDS

DESCRIPTION = ("Train, evaluate, export and benchmark computer-vision models; build them into a Triton model "
               "repository, serve it, and call or load-test the server. `focoos COMMAND --help` explains each.")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. With `command`, only that command's options are added: adding them may
    import the part of the library that command uses, and the others need not be imported."""
    parser = argparse.ArgumentParser(prog="focoos", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"focoos {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION)
        sub.set_defaults(run=module.run)
        if command is None or command == module.NAME:
            module.add_arguments(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command argv names: its first word that is not an option (the top level's options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a FocoosError is printed as one line and exits 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(_command(argv)).parse_args(argv)
        return args.run(args)
    except FocoosError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
