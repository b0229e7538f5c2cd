"""`focoos predict`: detect in one image, here or on a Triton server, and write Focoos' result files."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.options import RUNTIMES, add_model_arguments, add_random_weights_flag, given, library_option, load_model
from focoos.cli.output import print_detections, save_predictions, write_rgb
from focoos.ports import RuntimeType

NAME = "predict"
HELP = "detect in one image (Focoos' options; ours: --url, --output)"
DESCRIPTION = ("Run a model on one image (a file or an http(s) URL) and print what it found. The model runs here, "
               "eager or exported with --runtime, or on a Triton server with --url. The annotated image, the "
               "detections as JSON and the masks are written to the results folder.")
DEFAULT_MODEL = "fai-detr-l-obj365"  # Focoos' predict default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from focoos.client.tls import add_client_tls_arguments

    add_model_arguments(parser, default_model=DEFAULT_MODEL)
    parser.add_argument("--source", "--image", dest="source", required=True, help="image path or http(s) URL")
    library_option(parser, "--conf", "--threshold", dest="conf", type=float,
                   default_of=("focoos.infer.pipeline:LocalModel.infer", "threshold"),
                   help="confidence threshold; with --url the served model's unless given")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None, help="export first and run with this runtime")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="results folder (default: FOCOOS_PREDICTIONS_DIR)")
    parser.add_argument("--save", action=argparse.BooleanOptionalAction, default=True, help="write the annotated image")
    parser.add_argument("--save-json", action=argparse.BooleanOptionalAction, default=True,
                        help="write detections JSON")
    parser.add_argument("--save-masks", action=argparse.BooleanOptionalAction, default=True, help="write mask PNGs")
    parser.add_argument("--url", default=None, help="call this Triton server instead of running locally: gRPC "
                                                   "host:port, or HTTP http://host:port")
    parser.add_argument("--output", type=Path, default=None, help="also write the annotated image to this file")
    add_client_tls_arguments(parser)
    parser.add_argument("--export-dir", type=Path, default=None, help="with --runtime: where the export goes")
    add_random_weights_flag(parser)


def run(args: argparse.Namespace) -> int:
    from focoos.settings import predictions_dir

    to_dir = args.save or args.save_json or args.save_masks
    annotate = args.output is not None or args.save or args.save_masks
    options = given(args, threshold="conf")
    if args.url:
        from focoos.client import TritonInferModel
        from focoos.client.tls import client_tls_fields

        with TritonInferModel(args.url, model_name=args.model, **client_tls_fields(args)) as model:
            det = model.infer(args.source, annotate=annotate, **options)
    else:
        model = load_model(args)
        if args.runtime:
            model = model.export(runtime_type=RuntimeType(args.runtime),
                                 **given(args, out_dir="export_dir", image_size="im_size"))
        det = model.infer(args.source, annotate=annotate, **options)
    print_detections(det)
    if args.output is not None:
        write_rgb(Path(args.output), det.image)
        print(f"annotated image: {args.output}")
    if to_dir:
        save_predictions(det, args.source, args.output_dir or predictions_dir(), args.save, args.save_json,
                         args.save_masks)
    return 0
