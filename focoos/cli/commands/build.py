"""`focoos build`: a model into a Triton model repository (or a check of one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from focoos.cli.repository import add_build_arguments, build_model, build_options, repository_builder
from focoos.errors import FocoosError

NAME = "build"
HELP = "prepare a model for a Triton inference server (a model repository folder)"
DESCRIPTION = ("Export a model and write it into a model repository, the folder a Triton inference server serves "
               "from: the picture decoding, the network and the reading of its answers as three steps the server "
               "chains. A name already there gets a new version. Without --target, the repository is made for the "
               "Triton server installed on this machine. --check lists and checks the repository instead.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_build_arguments(parser)
    parser.add_argument("--name", default=None, help="served name (default: the model's name)")
    parser.add_argument("--check", action="store_true", help="list and validate the repository instead")
    parser.add_argument("--prebuild-engine", type=Path, default=None, metavar="CACHE_DIR",
                        help="onnx_trt16/32: build the TensorRT engine now, on this GPU machine, into "
                             "CACHE_DIR/<name> (default: the server builds it when it loads the model)")


def run(args: argparse.Namespace) -> int:
    repo = repository_builder(args.repository)
    if args.check:
        problems = repo.validate()
        for served in repo.list():
            print(f"{served.name}: versions {served.versions}, {served.task}, {served.runtime_type} ({served.target})")
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if not args.model:
        raise FocoosError("focoos build needs --model (or --check)")
    served = build_model(args, repo.root, build_options(args))
    if args.prebuild_engine:
        from focoos.builder.tensorrt import prebuild_engine_cache

        cache = prebuild_engine_cache(repo.root, served.name, args.prebuild_engine / served.name)
        print(f"TensorRT engine cache for {served.name}: {cache} (mount it at the config's trt_engine_cache_path)")
    return 0
