"""`focoos export`: the network as ONNX or TorchScript, ready for local inference or a server."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.options import (
    RUNTIMES,
    add_model_arguments,
    add_random_weights_flag,
    given,
    im_size,
    library_option,
    load_model,
)
from focoos.ports import RuntimeType

NAME = "export"
HELP = "export the network to ONNX or TorchScript"
DESCRIPTION = ("Export a model's network to ONNX or TorchScript in a folder that `InferModel` loads. --format picks "
               "Focoos' runtime for that format (ONNX on CUDA when there is a GPU, else on the CPU); --runtime names "
               "an exact one. An existing export is reused unless --overwrite.")
EXPORT = "focoos.focoos_model:FocoosModel.export"
FORMATS = ("onnx", "torchscript")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="Focoos' choice of runtime "
                        "(default: %(default)s)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None, help="an exact runtime type (overrides --format)")
    parser.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=None,
                        help="default: a folder per model under FOCOOS_EXPORTS_DIR")
    library_option(parser, "--onnx-opset", "--opset", dest="opset", type=int, default_of=(EXPORT, "onnx_opset"),
                   help="ONNX opset")
    parser.add_argument("--image-size", type=im_size, default=None, help="export size (default: --im-size or the "
                        "model's)")
    # Focoos' CLI reuses an export it finds; the library's export() replaces it unless told otherwise.
    parser.add_argument("--overwrite", action=argparse.BooleanOptionalAction, default=False,
                        help="replace an existing export (default: reuse it)")
    add_random_weights_flag(parser)


def run(args: argparse.Namespace) -> int:
    model = load_model(args)
    if args.runtime:
        runtime = RuntimeType(args.runtime)
    elif args.format == "torchscript":
        runtime = RuntimeType.TORCHSCRIPT_32
    else:  # Focoos' mapping of --format onnx: CUDA unless the device is the CPU
        runtime = RuntimeType.ONNX_CUDA32 if args.device != "cpu" and _cuda_available() else RuntimeType.ONNX_CPU
    infer_model = model.export(runtime_type=runtime, overwrite=args.overwrite,
                               **given(args, out_dir="out_dir", onnx_opset="opset", image_size="image_size",
                                       device="device"))
    print(f"exported {model.name} as {runtime.value} to {infer_model.model_dir}")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
