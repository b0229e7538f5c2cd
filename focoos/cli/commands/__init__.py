"""One module per `focoos` command. Each declares NAME, HELP (one line for `focoos --help`), DESCRIPTION (plain
words for `focoos NAME --help`), add_arguments(parser) and run(args) -> exit status, and imports the parts it
needs inside those functions, so listing the commands imports none of them. Focoos' programmatic CLI,
train_command, val_command, predict_command, export_command and benchmark_command, runs the same code."""

from __future__ import annotations

from types import ModuleType

from . import (
    bench,
    benchmark,
    build,
    checks,
    demo,
    export,
    hub,
    models,
    predict,
    serve,
    settings,
    swap,
    train,
    val,
    version,
)
from .benchmark import benchmark_command
from .export import export_command
from .predict import predict_command
from .train import train_command
from .val import val_command

# In the order `focoos --help` lists them: models first, the serving commands after the model ones.
COMMANDS: tuple[ModuleType, ...] = (
    models, predict, export, benchmark, build, serve, swap, bench, demo, train, val, settings, checks, hub, version,
)

__all__ = ["COMMANDS", "train_command", "val_command", "predict_command", "export_command", "benchmark_command"]
