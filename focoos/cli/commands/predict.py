"""`focoos predict`: detect in images, a folder, a glob, a video or a camera, here or on a Triton server, and
write Focoos' result files for each."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.cli.options import (
    RUNTIMES,
    add_model_arguments,
    add_random_weights_flag,
    deprecated_alias,
    given,
    library_option,
    load_model,
    server_url,
)
from focoos.cli.output import print_detections, save_predictions, save_video_predictions, write_rgb
from focoos.cli.sources import VIDEO_SUFFIXES, iter_sources
from focoos.errors import FocoosError
from focoos.ports import RuntimeType

if TYPE_CHECKING:
    from focoos.ports import FocoosDetections

NAME = "predict"
HELP = "find objects in images, a folder, a video or a camera feed, here or on a server"
DESCRIPTION = ("Run a model on an image file or web address, every image of a folder or a pattern such as "
               "'photos/*.jpg', a video file or a camera (its number, e.g. 0). The model runs on this machine, or "
               "on a Triton server with --url. For each image the picture with the findings drawn on it, the "
               "findings as JSON and the masks are written to the results folder; a video or camera gives one "
               "annotated video and one JSON file.")
DEFAULT_MODEL = "fai-detr-l-obj365"  # Focoos' predict default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from focoos.client.tls import add_client_tls_arguments

    add_model_arguments(parser, default_model=f"{DEFAULT_MODEL}; with --url, the model the server serves")
    source = parser.add_argument("--source", required=True,
                                 help="an image file or http(s) URL, a folder of images, a glob pattern in quotes "
                                      "('imgs/*.jpg'), a video file or a camera number (0)")
    deprecated_alias(parser, "--image", source)
    conf = library_option(parser, "--conf", type=float,
                          default_of=("focoos.infer.pipeline:LocalModel.infer", "threshold"),
                          help="keep what is found with at least this confidence (0-1); with --url the served "
                               "model's unless given")
    deprecated_alias(parser, "--threshold", conf)
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="export the model to this runtime first and run the export (default: run the PyTorch "
                             "model as it is)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="results folder (default: FOCOOS_PREDICTIONS_DIR)")
    parser.add_argument("--save", action=argparse.BooleanOptionalAction, default=True,
                        help="write the annotated image (or video)")
    parser.add_argument("--save-json", action=argparse.BooleanOptionalAction, default=True,
                        help="write the findings as JSON")
    parser.add_argument("--save-masks", action=argparse.BooleanOptionalAction, default=True,
                        help="write each mask as a black and white PNG (segmentation models)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="video or camera: stop after this many frames (default: the whole video; a camera "
                             "until Ctrl-C)")
    parser.add_argument("--url", default=None,
                        help="call this Triton server instead of running here: host:port (gRPC) or "
                             "http://host:port (default: run here)")
    parser.add_argument("--output", type=Path, default=None,
                        help="one image: also write the annotated image to this file (default: only the results "
                             "folder)")
    add_client_tls_arguments(parser)
    parser.add_argument("--export-dir", type=Path, default=None,
                        help="with --runtime: where the export goes (default: FOCOOS_EXPORTS_DIR)")
    add_random_weights_flag(parser)


def served_model(client_url: str, tls: dict[str, Any]) -> str:
    """The one model the server serves; several (or none) are listed in the error, for --model to choose."""
    from focoos.client import TritonInferModel

    with TritonInferModel(client_url, model_name="", **tls) as client:
        names = client.list_models()
    steps = ("_preprocess", "_model", "_postprocess")
    ensembles = [n for n in names if any(f"{n}{step}" in names for step in steps)] or [
        n for n in names if not n.endswith(steps)]
    if len(ensembles) == 1:
        print(f"{client_url} serves {ensembles[0]}")
        return ensembles[0]
    served = "\n  ".join(ensembles) if ensembles else "(no model is ready)"
    raise FocoosError(f"{client_url} serves {len(ensembles)} models; choose one with --model:\n  {served}")


def _local_model(args: argparse.Namespace) -> Any:
    args.model = args.model or DEFAULT_MODEL
    model = load_model(args)
    if args.runtime:
        model = model.export(runtime_type=RuntimeType(args.runtime),
                             **given(args, out_dir="export_dir", image_size="im_size"))
    return model


def run(args: argparse.Namespace) -> int:
    predict(args)
    return 0


def predict(args: argparse.Namespace) -> FocoosDetections | None:
    """What `focoos predict` does; returns the detections of a single image (None for several, or a video)."""
    import contextlib

    from tqdm.auto import tqdm

    from focoos.settings import predictions_dir

    annotate = args.output is not None or args.save or args.save_masks
    options = given(args, threshold="conf")
    output_dir = Path(args.output_dir) if args.output_dir is not None else predictions_dir()
    with contextlib.ExitStack() as stack:
        if args.url:
            from focoos.client import TritonInferModel
            from focoos.client.tls import client_tls_fields

            url = server_url(args.url, NAME)
            tls = client_tls_fields(args)
            name = args.model or served_model(url, tls)
            model = stack.enter_context(TritonInferModel(url, model_name=name, **tls))
        else:
            model = _local_model(args)
        sources = iter_sources(args.source, args.max_frames)
        if sources.single_image:
            det = model.infer(sources.items[0], annotate=annotate, **options)
            print_detections(det)
            if args.output is not None:
                write_rgb(Path(args.output), det.image)
                print(f"annotated image: {args.output}")
            if args.save or args.save_json or args.save_masks:
                save_predictions(det, sources.names[0], output_dir, args.save, args.save_json, args.save_masks)
            return det
        if sources.video is not None:
            frames = tqdm(sources.video.frames(), total=sources.video.total, desc=sources.video.name, unit="frame")
            results = save_video_predictions(model, frames, sources.video, output_dir, annotate and args.save,
                                             args.save_json, options)
            written = ", ".join(str(f) for f in results.files) or "nothing"
            print(f"{results.frames} frames, {results.detections} detections; written: {written}")
            return None
        found = 0
        for item, name in tqdm(list(zip(sources.items, sources.names, strict=True)), desc="predict", unit="img"):
            det = model.infer(item, annotate=annotate, **options)
            found += len(det.detections)
            if args.save or args.save_json or args.save_masks:
                save_predictions(det, name, output_dir, args.save, args.save_json, args.save_masks, quiet=True)
        print(f"{len(sources.items)} images, {found} detections; results: {output_dir}")
    return None


def predict_command(
    model_name: str,
    source: str,
    conf: float | None = None,
    runtime: RuntimeType | str | None = None,
    im_size: int | tuple[int, int] | None = None,
    save: bool | None = None,
    output_dir: str | Path | None = None,
    save_json: bool | None = None,
    save_masks: bool | None = None,
) -> FocoosDetections | None:
    """`focoos predict` from Python, with Focoos' `predict_command` parameters; returns the FocoosDetections of
    a single image (None for a folder, glob or video). A parameter left None is not passed: the library's
    default applies (confidence, the model's image size), and the CLI's (results in FOCOOS_PREDICTIONS_DIR,
    every result file written)."""
    from ._call import namespace

    return predict(namespace(NAME, model=model_name, source=source, conf=conf, runtime=runtime, im_size=im_size,
                             save=save, output_dir=output_dir, save_json=save_json, save_masks=save_masks))


__all__ = ["NAME", "HELP", "DESCRIPTION", "VIDEO_SUFFIXES", "add_arguments", "run", "predict", "predict_command"]
