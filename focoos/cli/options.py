"""Options several commands share, and the rule that keeps defaults in one place: an option the user
does not give is not passed, so the library's own default applies, and help shows that default as the
library declares it (read from its signature when help is printed, never retyped here)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
from typing import Any

from focoos.ports import RuntimeType

ADMIN_KEY_ENV = "FOCOOS_ADMIN_KEY"  # the server's admin key: from the environment, never argv (ps shows argv)
RUNTIMES = [runtime.value for runtime in RuntimeType]


class LibraryDefault:
    """The default of `parameter` in the library function `target` ("module:Qualified.name"), read when
    help is printed, so building a command's parser imports nothing heavy."""

    def __init__(self, target: str, parameter: str) -> None:
        self.target, self.parameter = target, parameter

    def value(self) -> Any:
        module, _, qualname = self.target.partition(":")
        function: Any = importlib.import_module(module)
        for part in qualname.split("."):
            function = getattr(function, part)
        return inspect.signature(function).parameters[self.parameter].default

    def __str__(self) -> str:
        value = self.value()
        return str(getattr(value, "value", value))  # an enum by its value, as the user types it


def library_option(
    parser: argparse.ArgumentParser, *flags: str, default_of: tuple[str, str], help: str, **kwargs: Any
) -> argparse.Action:
    """An option that defaults to None (not passed) and whose help shows the library's default."""
    action = parser.add_argument(*flags, default=None, help=f"{help} (default: %(library_default)s)", **kwargs)
    action.library_default = LibraryDefault(*default_of)  # read by argparse's "%(name)s" help expansion
    return action


def present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that have a value (not None): a None left out lets the callee's default apply."""
    return {name: value for name, value in values.items() if value is not None}


def given(args: argparse.Namespace, **parameters: str) -> dict[str, Any]:
    """{parameter: value of option dest} for each option the user gave (not None); the rest are left out."""
    return present(**{parameter: getattr(args, dest, None) for parameter, dest in parameters.items()})


def im_size(value: str) -> int | tuple[int, int]:
    """Focoos' image sizes: 640 (square), or height,width / heightxwidth."""
    parts = value.lower().replace("x", ",").split(",")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid image size {value!r}: use 640, 480,640 or 480x640") from None
    if len(sizes) not in (1, 2):
        raise argparse.ArgumentTypeError(f"invalid image size {value!r}: use 640, 480,640 or 480x640")
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


def add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    """--model, --device and --im-size of the commands that load a model here."""
    parser.add_argument("--model", required=default_model is None, default=default_model,
                        help="registry name, model folder, run name in FOCOOS_MODELS_DIR or hub:// reference"
                             + (" (default: %(default)s)" if default_model else ""))
    library_option(parser, "--device", default_of=("focoos.model_manager:ModelManager.get", "device"),
                   help="where the model runs: cpu, cuda or auto")
    parser.add_argument("--im-size", type=im_size, default=None, help="override the model's input size: 640 or 480,640")


def add_random_weights_flag(parser: argparse.ArgumentParser) -> None:
    """--allow-random-weights: untrained weights only when asked for, never by default."""
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="go on with RANDOM weights when the model's cannot be loaded, marked untrained "
                             "(default: an error that names the weights URL and how to provide them)")


def load_model(args: argparse.Namespace) -> Any:
    """The FocoosModel that --model names, with only the options the user gave."""
    from focoos.model_manager import ModelManager

    options = given(args, device="device", im_size="im_size")
    return ModelManager.get(args.model, allow_random_weights=getattr(args, "allow_random_weights", False), **options)


def admin_key() -> str | None:
    """The server's admin key from the environment (None when unset or empty)."""
    return os.environ.get(ADMIN_KEY_ENV) or None
