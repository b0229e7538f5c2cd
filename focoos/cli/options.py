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

DEFAULT_PORTS = {"grpc": 8001, "http": 8000, "https": 443}  # Triton's gRPC and HTTP ports; https: a TLS proxy
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


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already says it, the option is required, or it is
    a plain on/off flag (off by default); an option that is simply unset by default says so."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        plain_flag = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if (not action.option_strings or action.required or "default" in text.lower()
                or action.default is argparse.SUPPRESS or (plain_flag and action.default is False)):
            return text
        return f"{text} (default: not set)" if action.default is None else f"{text} (default: %(default)s)"


class DeprecatedAlias(argparse.Action):
    """An option's former name: still accepted, hidden from help, and says which name to use."""

    def __init__(self, option_strings: list[str], dest: str, canonical: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.canonical = canonical

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import sys

        print(f"warning: {option_string} is deprecated, use {self.canonical}", file=sys.stderr)
        setattr(namespace, self.dest, values)


REQUIRED_ALIASED = "focoos_required"  # parser attribute: required options that also have a former name


def deprecated_alias(parser: argparse.ArgumentParser, alias: str, of: argparse.Action) -> None:
    """Accept `alias` for the option `of` (same value type and destination) without listing it in help.

    argparse would count a required option given by its former name as missing: such an option is checked after
    parsing instead (check_required)."""
    if of.required:
        of.required = False
        setattr(parser, REQUIRED_ALIASED, [*getattr(parser, REQUIRED_ALIASED, []), of])
    parser.add_argument(alias, dest=of.dest, action=DeprecatedAlias, canonical=of.option_strings[0], type=of.type,
                        choices=of.choices, default=argparse.SUPPRESS, help=argparse.SUPPRESS, metavar=of.metavar)


def check_required(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The required options that have a former name: exit with argparse's usage error when neither was given."""
    missing = [a.option_strings[0] for a in getattr(parser, REQUIRED_ALIASED, []) if getattr(args, a.dest) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")


def server_url(url: str, command: str, http: bool = True) -> str:
    """--url as the client takes it: gRPC host:port, or (where `http`) Triton's HTTP endpoint http(s)://host:port.

    grpc://host:port and a trailing slash are accepted, a missing port is Triton's (gRPC 8001, HTTP 8000);
    anything else is refused with what is expected before a connection is tried (gRPC would report a DNS error)."""
    from focoos.errors import FocoosError

    text = url.strip().rstrip("/")
    scheme, sep, address = text.partition("://")
    if not sep:
        scheme, address = "grpc", text
    expected = ("host:port for Triton's gRPC endpoint (8001 by default)"
                + (", or http://host:port for its HTTP endpoint (8000 by default)" if http else ""))
    if scheme in ("http", "https") and not http:
        raise FocoosError(f"focoos {command} speaks gRPC only: pass --url {expected}, not {url}")
    if scheme not in ("grpc", "http", "https"):
        raise FocoosError(f"--url {url}: unknown scheme {scheme}://; pass {expected}")
    if "/" in address or not address:
        raise FocoosError(f"--url {url}: expected {expected}")
    host, colon, port = address.rpartition(":")
    if not colon or (":" in host and not host.endswith("]")):  # no port given (an IPv6 address has colons)
        host, port = address, str(DEFAULT_PORTS[scheme])
    if not port.isdigit() or not host:
        raise FocoosError(f"--url {url}: expected {expected}")
    return f"{host}:{port}" if scheme == "grpc" else f"{scheme}://{host}:{port}"


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


MODEL_HELP = "a name from `focoos models`, a model folder, a training run's name or a hub://reference"


def add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None = None,
                        im_size_help: str | None = "the size the model takes pictures in: 640, or 480,640 for "
                                                   "height,width (default: the model's own)") -> None:
    """--model, --device and --im-size of the commands that load a model here; `default_model` (a description)
    makes --model optional, the command resolving it."""
    parser.add_argument("--model", required=default_model is None, default=None,
                        help=MODEL_HELP + (f" (default: {default_model})" if default_model else ""))
    library_option(parser, "--device", default_of=("focoos.model_manager:ModelManager.get", "device"),
                   help="where the model runs: cpu, cuda (the CPU when there is no GPU) or auto")
    if im_size_help:
        parser.add_argument("--im-size", type=im_size, default=None, help=im_size_help)


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
