"""Train, export and serve computer-vision models; the API follows the Focoos model API.

`import focoos` stays light (no torch): FocoosModel and InferModel load on first use.
"""

from __future__ import annotations

from pathlib import Path
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
    "ApiKey": "focoos.hub",
    "DatasetSpec": "focoos.hub",
    "HubSyncLocalTraining": "focoos.hub",
    "Metrics": "focoos.hub",
    "Quotas": "focoos.hub",
    "TrainingInfo": "focoos.hub",
    "ConfigManager": "focoos.model_manager",
    "DictClass": "focoos.nn.config",
    "ModelConfig": "focoos.nn.config",
    "FOCOOS_CONFIG": "focoos.utils.config",
    "DEV_API_URL": "focoos.utils.config",
    "LOCAL_API_URL": "focoos.utils.config",
    "PROD_API_URL": "focoos.utils.config",
    "ApiClient": "focoos.utils.api_client",
    "get_logger": "focoos.utils.logger",
    "took": "focoos.utils.timer",
    "load_runtime": "focoos.utils.runtime",
    **{name: "focoos.utils.system" for name in (
        "GPUDevice", "GPUInfo", "SystemInfo", "get_cpu_name", "get_cuda_version", "get_device_name", "get_gpus_count",
        "get_system_info")},
    **{name: "focoos.utils.vision" for name in (
        "base64mask_to_mask", "binary_mask_to_base64", "class_to_index", "fai_detections_to_sv", "image_loader",
        "image_preprocess", "index_to_class", "sv_to_fai_detections")},
    **{name: "focoos.utils.port_types" for name in (
        "DatasetEntry", "DatasetMetadata", "DetectronDict", "DeviceType", "DynamicAxes", "ExportCfg", "ModelNotFound",
        "ModelOutput", "OnnxRuntimeOpts", "OptimizerType", "PydanticBase", "SchedulerType", "StatusTransition",
        "TorchscriptRuntimeOpts")},
}

PACKAGE_DIR = Path(__file__).parent.resolve()
ROOT_PACKAGE_DIR = PACKAGE_DIR.parent
# Folders Focoos exports as constants; read from the settings when asked so the FOCOOS_* variables still count.
_FOLDERS = {
    "ROOT_DIR": lambda s: s.ROOT_DIR,
    "MODELS_DIR": lambda s: str(s.models_dir()),
    "DATASETS_DIR": lambda s: str(s.datasets_dir()),
    "PREDICTIONS_DIR": lambda s: str(s.predictions_dir()),
    "ASSETS_DIR": lambda s: s.assets_dir(),  # a Path: tutorials write ASSETS_DIR / "federer.jpg"
}


def __getattr__(name: str) -> Any:
    if name == "annotate_image":  # Focoos' signature: (im, detections, task, classes)
        from focoos.processing.annotate import annotate_detections

        return annotate_detections
    if name in _FOLDERS:
        from focoos import settings

        return _FOLDERS[name](settings)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'focoos' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    *_FOLDERS,
    "PACKAGE_DIR",
    "ROOT_PACKAGE_DIR",
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
__all__ = list(dict.fromkeys(__all__))  # the lazy names repeat some listed above
