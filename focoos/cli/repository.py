"""What build, swap and serve share: the options of a build into a Triton model repository, the build
itself, and the refusal to serve untrained weights unless asked for."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from focoos.errors import FocoosError

from .datasets import DATASET_HELP, add_dataset_location
from .options import RUNTIMES, add_random_weights_flag, given, im_size, library_option, load_model

BUILD_DEVICE = "cpu"  # where a model is loaded to be exported for a server: any machine can, the same way
ADD = "focoos.builder.repository:RepositoryBuilder.add"
REPOSITORY = ("focoos.builder.repository:RepositoryBuilder.__init__", "root")
# RepositoryBuilder.add's options as (option dest, parameter): passed only when given.
BUILD_OPTIONS = {"runtime": "runtime_type", "target": "target", "max_batch_size": "max_batch_size",
                 "max_queue_size": "max_queue_size", "queue_timeout_ms": "queue_timeout_ms",
                 "max_in_flight": "max_in_flight", "precision": "precision",
                 "calibration_images": "calibration_images"}


def add_build_arguments(parser: argparse.ArgumentParser, served: bool = False) -> None:
    """The options of a build; `served`: a new version of a served model (focoos swap), whose runtime, target
    and batch size are those of the version served unless given."""
    from focoos.builder.configs import TARGETS
    from focoos.builder.repository import PRECISIONS

    parser.add_argument("--model", help="a name from `focoos models`, a model folder, a training run's name or a "
                                         "hub://reference (required unless --check or --rollback)")
    parser.add_argument("--device", default=BUILD_DEVICE, help="where the model is loaded to be exported "
                        "(default: %(default)s)")
    parser.add_argument("--im-size", type=im_size, default=None,
                        help="the picture size the served model takes: 640, or 480,640 (default: the model's own)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="default: the served version's" if served else "default: the target's")
    library_option(parser, "--repository", type=Path, default_of=REPOSITORY, help="the model repository")
    parser.add_argument("--target", choices=TARGETS, default=None,
                        help="gpu/cpu: an NGC Triton image; embedded: nvidia-pytriton's tritonserver (python backend "
                             "only). Default: " + ("the served version's" if served else
                                                   "the one the tritonserver here can load"))
    if served:
        parser.add_argument("--max-batch-size", type=int, default=None,
                            help="largest batch the network step takes (default: the served version's)")
    else:
        library_option(parser, "--max-batch-size", type=int, default_of=(ADD, "max_batch_size"),
                       help="largest batch the network step takes")
    library_option(parser, "--max-queue-size", type=int, default_of=(ADD, "max_queue_size"),
                   help="requests the network step queues before the server refuses more (0: unbounded)")
    library_option(parser, "--queue-timeout-ms", type=int, default_of=(ADD, "queue_timeout_ms"),
                   help="refuse a request queued longer than this (0: no limit)")
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="requests the ensemble admits at once; the next is refused as busy before its image is "
                             "decoded (0: no limit; default: two batches per network instance + one per python step "
                             "instance)")
    library_option(parser, "--precision", choices=PRECISIONS, default_of=(ADD, "precision"),
                   help="the network's number format: int8 (onnx_cpu, needs --calibration-images) is faster where "
                        "the CPU has int8 dot products; bf16 (onnx_cpu, target embedded, OpenVINO) where it computes "
                        "bf16, refused elsewhere; measure accuracy (benchmarks/accuracy_per_runtime.py)")
    parser.add_argument("--calibration-images", type=Path, default=None, metavar="DIR",
                        help="int8: a folder of images like those the model will be served")
    parser.add_argument("--check-accuracy", dest="dataset", default=None, metavar="DATASET",
                        help="before publishing, serve the new build on this dataset's validation split and refuse "
                             "it (exit 2, repository unchanged) when its metric falls more than --accuracy-tolerance "
                             "below the model's eager fp32 answers; " + DATASET_HELP)
    parser.add_argument("--accuracy-tolerance", type=float, default=None, metavar="POINTS",
                        help="points of AP / mIoU / top-1 the build may lose (default: 1.0, classification 0.5)")
    add_dataset_location(parser)
    add_random_weights_flag(parser)


def build_options(args: argparse.Namespace) -> dict[str, Any]:
    """RepositoryBuilder.add's options that the user gave."""
    return given(args, **{parameter: dest for dest, parameter in BUILD_OPTIONS.items()})


def accuracy_options(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """RepositoryBuilder.add's accuracy gate: the --check-accuracy dataset's validation split, and the tolerance."""
    if getattr(args, "dataset", None) is None:
        if getattr(args, "accuracy_tolerance", None) is not None:
            raise FocoosError("--accuracy-tolerance needs --check-accuracy DATASET")
        return {}
    from focoos.ports import DatasetSplitType

    from .datasets import splits

    return {"check_accuracy": splits(args, model, [DatasetSplitType.VAL])[0],
            **given(args, accuracy_tolerance="accuracy_tolerance")}


def repository_builder(repository: Path | None) -> Any:
    """The RepositoryBuilder of --repository, or of the builder's default folder when not given."""
    from focoos.builder import RepositoryBuilder

    return RepositoryBuilder(repository) if repository is not None else RepositoryBuilder()


def build_model(args: argparse.Namespace, repository: Path | None, options: dict[str, Any]) -> Any:
    """Build args.model into the repository; with no target given, the one the tritonserver here can load."""
    from focoos.builder.configs import TARGETS
    from focoos.builder.server import server_target

    if options.get("target") is None:
        options["target"], why = server_target()
        choose = f" (--target {'|'.join(TARGETS)} chooses)" if "target" in vars(args) else ""
        print(f"target {options['target']}: {why}{choose}", flush=True)
    repo = repository_builder(repository)
    model = load_model(args)
    served = repo.add(model, **given(args, name="name"), **options, **accuracy_options(args, model))
    print(f"built {served.name} version {served.versions[-1]} ({served.runtime_type}, {served.precision}, "
          f"{served.target}) in {repo.root}", flush=True)
    if served.accuracy:
        print(f"{served.accuracy['metric']}: served {served.accuracy['served']:.2f}, eager fp32 "
              f"{served.accuracy['eager']:.2f} on {served.accuracy['images']} images", flush=True)
    return served


def refuse_random_weights(repository: Path, allowed: bool) -> None:
    """Untrained weights are never served by default: a model built with them needs the flag again here."""
    untrained = [m.name for m in repository_builder(repository).list() if m.weights == "random"]
    if untrained and not allowed:
        raise FocoosError(f"{repository} holds models built with RANDOM weights ({', '.join(untrained)}): their "
                          f"answers mean nothing. Rebuild them with real weights, or pass --allow-random-weights "
                          f"to serve them anyway")
