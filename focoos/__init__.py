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
    RandomWeightsError,
    RuntimeUnavailableError,
    UnsupportedFamilyError,
    WeightsError,
)
from focoos.model_manager import ModelManager, NoWeightsWarning
from focoos.model_registry import ModelRegistry
from focoos.ports import (
    ArtifactName,
    DatasetLayout,
    DatasetSplitType,
    ExportFormat,
    FocoosDet,
    FocoosDetections,
    InferLatency,
    LatencyMetrics,
    ModelExtension,
    ModelFamily,
    ModelInfo,
    RuntimeType,
    Task,
    TrainerArgs,
)
from focoos.version import __version__ as __version__

_LAZY = {
    "FocoosHUB": "focoos.hub",  # imports requests: loaded on first use
    "RemoteModel": "focoos.hub",
    "RemoteDataset": "focoos.hub",
    "ModelStatus": "focoos.hub",
    "RemoteModelInfo": "focoos.hub",
    "ModelPreview": "focoos.hub",
    "DatasetPreview": "focoos.hub",
    "User": "focoos.hub",
    "FocoosModel": "focoos.focoos_model",
    "InferModel": "focoos.infer.infer_model",
}


def __getattr__(name: str) -> Any:
    if name == "annotate_image":  # Focoos' signature: (im, detections, task, classes)
        from focoos.processing.annotate import annotate_detections

        return annotate_detections
    if name in ("MODELS_DIR", "ASSETS_DIR"):  # Focoos' names, read when asked so the environment still counts
        from focoos import settings

        return str(settings.models_dir()) if name == "MODELS_DIR" else settings.assets_dir()
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'focoos' has no attribute {name!r}")


__all__ = [
    "ArtifactName",
    "DatasetLayout",
    "DatasetPreview",
    "DatasetSplitType",
    "ExportError",
    "ExportFormat",
    "FocoosDet",
    "FocoosDetections",
    "FocoosError",
    "FocoosHUB",
    "FocoosModel",
    "InferLatency",
    "InferModel",
    "InvalidInputError",
    "LatencyMetrics",
    "ModelExtension",
    "ModelFamily",
    "ModelInfo",
    "ModelInfoError",
    "ModelManager",
    "ModelNotFoundError",
    "ModelPreview",
    "ModelStatus",
    "ModelRegistry",
    "NoWeightsWarning",
    "RemoteDataset",
    "RemoteModel",
    "RemoteModelInfo",
    "RuntimeType",
    "RuntimeUnavailableError",
    "Task",
    "TrainerArgs",
    "User",
    "annotate_image",
    "UnsupportedFamilyError",
    "RandomWeightsError",
    "WeightsError",
]
