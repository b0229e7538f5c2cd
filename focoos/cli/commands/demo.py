"""`focoos demo`: the whole stack offline, in one command."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from focoos.cli.options import add_random_weights_flag, given, im_size, library_option
from focoos.cli.output import print_detections, write_rgb
from focoos.cli.repository import BUILD_DEVICE, REPOSITORY, repository_builder

NAME = "demo"
HELP = "the whole stack offline: build, serve, call over gRPC, annotate"
DESCRIPTION = ("Build a model into a repository, serve it on the tritonserver bundled with nvidia-pytriton, call it "
               "over gRPC with sample images, print and draw what it found, then stop the server. Needs no network "
               "and no GPU.")
DEFAULT_MODEL = "fai-detr-n-digits"  # the bundled detector trained here (scripts/train_bundled_digits.py)
DEMO_BATCH = 4  # a small batch: the embedded server runs on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="default: %(default)s, bundled with trained weights")
    parser.add_argument("--name", default="demo", help="served name (default: %(default)s)")
    parser.add_argument("--im-size", type=im_size, default=None, help="override the model's input size")
    library_option(parser, "--repository", type=Path, default_of=REPOSITORY, help="the repository it builds into")
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"),
                        help="annotated images (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the served model's")
    parser.add_argument("--grpc-port", type=int, default=None, help="default: a free port")
    parser.add_argument("--keep-serving", action="store_true", help="serve until Ctrl-C after the calls")
    add_random_weights_flag(parser)


def run(args: argparse.Namespace) -> int:
    """Build -> serve on the embedded tritonserver -> call over gRPC -> print and annotate -> stop."""
    import threading
    import warnings

    from focoos.builder import TritonServer
    from focoos.client import TritonInferModel
    from focoos.model_manager import ModelManager, NoWeightsWarning
    from focoos.ports import RuntimeType
    from focoos.processing import encode_image
    from focoos.processing.annotate import annotate_detections
    from focoos.samples import digit_canvases, sample_images

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoWeightsWarning)
        model = ModelManager.get(args.model, device=BUILD_DEVICE, allow_random_weights=args.allow_random_weights,
                                 **given(args, im_size="im_size"))
    if caught:
        print(f"warning: {caught[0].message}")
    repo = repository_builder(args.repository)
    if args.name in [m.name for m in repo.list()]:
        repo.remove(args.name)  # the demo owns this name: rebuild it from scratch
    served = repo.add(model, runtime_type=RuntimeType.ONNX_CPU, name=args.name, target="embedded",
                      max_batch_size=DEMO_BATCH)
    print(f"built '{served.name}' from {model.name} into {repo.root} (ONNX Runtime step, python backend)")

    with TritonServer(repo.root, grpc_port=args.grpc_port) as server:
        print(f"tritonserver ready: grpc {server.grpc_url}, metrics {server.metrics_url}")
        with TritonInferModel(server.grpc_url, model_name=served.name) as client:
            trained_on_digits = (model.model_info.val_dataset or "").startswith("digits")
            samples = digit_canvases() if trained_on_digits else sample_images()
            for name, image in samples.items():
                det = client.infer(encode_image(image), **given(args, threshold="threshold"))
                # drawn on the pixels in hand: the client would decode the JPEG it sent to draw
                det.image = annotate_detections(image, det, client.task, client.classes, list(client.info.skeleton))
                print(f"\n== {name} ({image.shape[1]}x{image.shape[0]})")
                print_detections(det)
                out = Path(args.output_dir) / f"{name}.jpg"
                write_rgb(out, det.image)
                print(f"annotated: {out}")
        print(f"\nfrom another process: TritonInferModel('{server.grpc_url}', model_name='{served.name}')"
              f".infer('image.jpg')  or  focoos predict --url {server.grpc_url} --model {served.name} --image IMG")
        if args.keep_serving:
            print("serving until Ctrl-C", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    print("server stopped")
    return 0
