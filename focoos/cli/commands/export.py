"""`focoos export`: the network as ONNX or TorchScript, ready for local inference or a server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from focoos.cli.options import (
    RUNTIMES,
    add_model_arguments,
    add_random_weights_flag,
    deprecated_alias,
    given,
    im_size,
    library_option,
    load_model,
)
from focoos.ports import ExportFormat, RuntimeType

if TYPE_CHECKING:
    from focoos.infer.infer_model import InferModel

NAME = "export"
HELP = "save a model as an ONNX or TorchScript file that runs without its training code"
DESCRIPTION = ("Save a model's network as an ONNX or TorchScript file, in a folder that `InferModel` (or `focoos "
               "build`) loads. --format onnx runs on the GPU when there is one, else on the CPU; --runtime names an "
               "exact runtime, and one this machine lacks (TensorRT, CUDA) runs on the CPU with a warning. An "
               "earlier export in the same folder is reused unless --overwrite.")
EXPORT = "focoos.focoos_model:FocoosModel.export"
FORMATS = ("onnx", "torchscript")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, im_size_help=None)
    size = parser.add_argument("--im-size", type=im_size, default=None,
                               help="the picture size the export takes: 640, or 480,640 for height,width "
                                    "(default: the model's own)")
    deprecated_alias(parser, "--image-size", size)
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="file format")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="an exact runtime, instead of --format's choice (default: --format's)")
    out = parser.add_argument("--output-dir", dest="out_dir", type=Path, default=None,
                              help="default: a folder per model and runtime under FOCOOS_EXPORTS_DIR")
    deprecated_alias(parser, "--out-dir", out)
    opset = library_option(parser, "--onnx-opset", dest="opset", type=int, default_of=(EXPORT, "onnx_opset"),
                           help="ONNX operator set version")
    deprecated_alias(parser, "--opset", opset)
    # Focoos' CLI reuses an export it finds; the library's export() replaces it unless told otherwise.
    parser.add_argument("--overwrite", action=argparse.BooleanOptionalAction, default=False,
                        help="replace an earlier export in the folder (--no-overwrite reuses it)")
    add_random_weights_flag(parser)


def run(args: argparse.Namespace) -> int:
    export(args)
    return 0


def export(args: argparse.Namespace) -> InferModel:
    """What `focoos export` does; returns the InferModel that runs the export."""
    model = load_model(args)
    if args.runtime:
        runtime = RuntimeType(args.runtime)
    elif args.format == "torchscript":
        runtime = RuntimeType.TORCHSCRIPT_32
    else:  # Focoos' mapping of --format onnx: CUDA unless the device is the CPU
        runtime = RuntimeType.ONNX_CUDA32 if args.device != "cpu" and _cuda_available() else RuntimeType.ONNX_CPU
    infer_model = model.export(runtime_type=runtime, overwrite=args.overwrite,
                               **given(args, out_dir="out_dir", onnx_opset="opset", image_size="im_size",
                                       device="device"))
    print(f"exported {model.name}: {infer_model.model_path} (runs as {infer_model.runtime_type.value} on "
          f"{infer_model.device})")
    return infer_model


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def export_command(
    model_name: str,
    format: ExportFormat | str | None = ExportFormat.TORCHSCRIPT,
    output_dir: str | Path | None = None,
    device: str | None = None,
    onnx_opset: int | None = None,
    im_size: int | tuple[int, int] | None = None,
    overwrite: bool | None = None,
) -> InferModel:
    """`focoos export` from Python, with Focoos' `export_command` parameters (TorchScript unless `format` says
    otherwise, as there); returns what Focoos returns, the InferModel that runs the export (the exported file:
    `.model_path`). A parameter left None is not passed: the library's default applies, and the CLI's (an earlier
    export in the folder is reused unless `overwrite`)."""
    from ._call import namespace

    return export(namespace(NAME, model=model_name, format=format, out_dir=output_dir, device=device,
                            opset=onnx_opset, im_size=im_size, overwrite=overwrite))
