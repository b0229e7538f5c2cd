"""Train, export and serve computer-vision models; the API follows the Focoos model API.

`import focoos` stays light (no torch): FocoosModel and InferModel load on first use.
"""

from __future__ import annotations

from typing import Any

from focoos.errors import (
    ExportError,
    FocoosError,
    InvalidInputError,
    ModelInfoError,
    ModelNotFoundError,
    RuntimeUnavailableError,
    UnsupportedFamilyError,
    WeightsError,
)
from focoos.model_manager import ModelManager, NoWeightsWarning
from focoos.model_registry import ModelRegistry
from focoos.ports import (
    DatasetLayout,
    DatasetSplitType,
    FocoosDet,
    FocoosDetections,
    InferLatency,
    LatencyMetrics,
    ModelFamily,
    ModelInfo,
    RuntimeType,
    Task,
    TrainerArgs,
)

__version__ = "0.1.0"

_LAZY = {
    "FocoosHUB": "focoos.hub",  # imports requests: loaded on first use
    "FocoosModel": "focoos.focoos_model",
    "InferModel": "focoos.infer.infer_model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'focoos' has no attribute {name!r}")


__all__ = [
    "DatasetLayout",
    "DatasetSplitType",
    "ExportError",
    "FocoosDet",
    "FocoosDetections",
    "FocoosError",
    "FocoosHUB",
    "FocoosModel",
    "InferLatency",
    "InferModel",
    "InvalidInputError",
    "LatencyMetrics",
    "ModelFamily",
    "ModelInfo",
    "ModelInfoError",
    "ModelManager",
    "ModelNotFoundError",
    "ModelRegistry",
    "NoWeightsWarning",
    "RuntimeType",
    "RuntimeUnavailableError",
    "Task",
    "TrainerArgs",
    "UnsupportedFamilyError",
    "WeightsError",
]
