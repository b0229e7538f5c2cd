"""`focoos checks`: what this machine can run."""

from __future__ import annotations

import argparse
import contextlib

from focoos.errors import FocoosError

NAME = "checks"
HELP = "print what this machine can run (torch, CUDA, ONNX Runtime, tritonserver)"
DESCRIPTION = ("Print the Python and package versions, whether CUDA and which GPUs are there, the ONNX Runtime "
               "execution providers, and the tritonserver and nvidia-smi found: what to look at first when a "
               "command fails on a new machine.")
PACKAGES = ("focoos", "numpy", "torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "tensorrt", "tritonclient",
            "nvidia-pytriton", "pycocotools", "supervision")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    import importlib.metadata
    import platform
    import shutil

    print(f"python: {platform.python_version()} ({platform.platform()})")
    for package in PACKAGES:
        try:
            print(f"{package}: {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{package}: not installed")
    with contextlib.suppress(ImportError):
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        print(f"cuda: {torch.version.cuda if torch.cuda.is_available() else 'not available'}; gpus: {gpus or 'none'}")
    with contextlib.suppress(ImportError):
        import onnxruntime

        print(f"onnxruntime providers: {onnxruntime.get_available_providers()}")
    try:
        from focoos.builder.server import find_tritonserver

        print(f"tritonserver: {find_tritonserver()}")
    except (ImportError, FocoosError, OSError) as exc:
        print(f"tritonserver: not found ({exc})")
    print(f"nvidia-smi: {shutil.which('nvidia-smi') or 'not found'}")
    return 0
