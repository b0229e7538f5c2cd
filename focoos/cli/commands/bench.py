"""`focoos bench`: load a served model over gRPC at several concurrencies (the client's bench)."""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "measure a running server under load: response times and requests per second"
DESCRIPTION = ("Send the images of a folder to a model on a Triton server from closed loops of concurrent "
               "requests, one level after another, and print the latency percentiles and throughput of each "
               "level as a table or JSON. Exits 1 when a level had no successful request.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from focoos.client.bench import add_bench_arguments

    add_bench_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from focoos.cli.options import server_url
    from focoos.client.bench import bench_command

    if getattr(args, "url", None):
        args.url = server_url(args.url, NAME, http=False)
    return bench_command(args)
