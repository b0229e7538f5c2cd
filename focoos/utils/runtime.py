"""Focoos' `load_runtime(runtime_type, model_path, model_info, warmup_iter, device)`.

It returns this package's runtime for an exported file (a callable from an NCHW float32 batch to the
network's named outputs), warmed up `warmup_iter` times at the model's input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from focoos.ports import ModelInfo, RuntimeType

__all__ = ["load_runtime"]


def load_runtime(
    runtime_type: RuntimeType | str,
    model_path: str | Path,
    model_info: ModelInfo,
    warmup_iter: int = 50,
    device: Literal["cuda", "cpu", "auto"] = "auto",
) -> Any:
    """The runtime of an exported model file (`.onnx` or `.pt`); RuntimeUnavailableError when the runtime's
    library or device is missing."""
    from focoos.infer.infer_model import locate_export
    from focoos.infer.runtimes import load_runtime as build

    path, kind, meta = locate_export(Path(model_path), RuntimeType(runtime_type))
    runtime = build(path, kind, meta.get("output_names"), model_info.input_hw, device)
    batch = np.zeros((1, 3, *model_info.input_hw), dtype=np.float32)
    for _ in range(max(0, warmup_iter)):
        runtime(batch)
    return runtime
