"""`focoos benchmark`: how long the network takes here, eager and exported."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.options import RUNTIMES, add_model_arguments, given, im_size, library_option, load_model, present
from focoos.ports import RuntimeType

NAME = "benchmark"
HELP = "latency of the network (eager, and exported with --runtime)"
DESCRIPTION = ("Time the network on random input of the model's size (or --size): the eager PyTorch model, and with "
               "--runtime the same model exported to that runtime. Prints latency statistics as JSON.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    library_option(parser, "--iterations", type=int,
                   default_of=("focoos.focoos_model:FocoosModel.benchmark", "iterations"), help="timed runs")
    parser.add_argument("--size", type=im_size, default=None, help="input size (same as --im-size here)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None, help="also time an export to this runtime")
    parser.add_argument("--export-dir", type=Path, default=None, help="with --runtime: where the export goes")


def run(args: argparse.Namespace) -> int:
    size = args.size or args.im_size
    args.im_size = None  # Focoos: --im-size is the benchmark's input size, the model stays as it is
    model = load_model(args)
    options = present(iterations=args.iterations, size=size)
    print(model.benchmark(**options).model_dump_json(indent=2))
    if args.runtime:
        exported = model.export(runtime_type=RuntimeType(args.runtime), **given(args, out_dir="export_dir"),
                                allow_random_weights=True)  # latency only: the export is marked untrained
        print(exported.benchmark(**options).model_dump_json(indent=2))
    return 0
