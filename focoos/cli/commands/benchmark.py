"""`focoos benchmark`: how long the network takes here, eager and exported."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.options import (
    RUNTIMES,
    add_model_arguments,
    deprecated_alias,
    given,
    im_size,
    library_option,
    load_model,
    present,
)
from focoos.ports import RuntimeType

NAME = "benchmark"
HELP = "measure how fast the model runs on this machine"
DESCRIPTION = ("Run the model's network many times on a random picture of its size (or --im-size) and report "
               "pictures per second and the mean and 95th-percentile time per picture: the PyTorch model, and with "
               "--runtime the same model exported to that runtime. The summary goes to the screen; the full numbers "
               "are printed as JSON. A device or runtime this machine lacks runs on the CPU with a warning.")
BENCHMARK = "focoos.focoos_model:FocoosModel.benchmark"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, im_size_help=None)
    size = parser.add_argument("--im-size", type=im_size, default=None,
                               help="the picture size to time: 640, or 480,640 for height,width (default: the "
                                    "model's own)")
    deprecated_alias(parser, "--size", size)
    library_option(parser, "--iterations", type=int, default_of=(BENCHMARK, "iterations"), help="timed runs")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="also time the model exported to this runtime (default: only the PyTorch model)")
    parser.add_argument("--export-dir", type=Path, default=None,
                        help="with --runtime: where the export goes (default: FOCOOS_EXPORTS_DIR)")


def run(args: argparse.Namespace) -> int:
    from focoos.benchmark import latency_summary, report

    size = args.im_size
    args.im_size = None  # Focoos: --im-size is the benchmark's input size, the model stays as it is
    model = load_model(args)
    options = present(iterations=args.iterations, size=size)
    print(model.benchmark(**options, **given(args, device="device")).model_dump_json(indent=2))
    if args.runtime:
        exported = model.export(runtime_type=RuntimeType(args.runtime), allow_random_weights=True,  # latency only
                                **given(args, out_dir="export_dir", device="device"))
        metrics = exported.benchmark(**options)
        report(latency_summary(f"{model.name} ({exported.runtime_type.value})", metrics))
        print(metrics.model_dump_json(indent=2))
    return 0


def benchmark_command(
    model_name: str,
    iterations: int | None = None,
    device: str | None = None,
    im_size: int | tuple[int, int] | None = None,
) -> None:
    """`focoos benchmark` from Python, with Focoos' `benchmark_command` parameters: prints the latency metrics.
    A parameter left None is not passed, so the library's default applies (iterations, device, the model's size)."""
    from ._call import namespace

    run(namespace(NAME, model=model_name, iterations=iterations, device=device, im_size=im_size))
