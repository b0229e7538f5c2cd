"""Model families: one sub-package per family, each exposing `build_model(config, num_classes)`.

The families share blocks through `focoos.models.layers` and `focoos.models.backbones`, never each other.

The table below is the only place that maps a ModelFamily to code; torch is imported only when
a network is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from focoos.errors import UnsupportedFamilyError
from focoos.ports import ModelFamily, ModelInfo, Task

FAMILY_MODULES: dict[ModelFamily, str] = {
    ModelFamily.DETR: "focoos.models.fai_detr.modelling",
    ModelFamily.IMAGE_CLASSIFIER: "focoos.models.fai_cls.modelling",
    ModelFamily.MASKFORMER: "focoos.models.fai_mf.modelling",
    ModelFamily.BISENETFORMER: "focoos.models.bisenetformer.modelling",
    ModelFamily.RTMO: "focoos.models.rtmo.modelling",
}

FAMILY_TASKS: dict[ModelFamily, set[Task]] = {
    ModelFamily.DETR: {Task.DETECTION},
    ModelFamily.IMAGE_CLASSIFIER: {Task.CLASSIFICATION},
    ModelFamily.MASKFORMER: {Task.INSTANCE_SEGMENTATION, Task.SEMSEG},
    ModelFamily.BISENETFORMER: {Task.SEMSEG},
    ModelFamily.RTMO: {Task.KEYPOINT},
}


def check_supported(info: ModelInfo) -> None:
    """Raise UnsupportedFamilyError unless this package can build and run the model."""
    if info.model_family not in FAMILY_MODULES:
        supported = ", ".join(f.value for f in FAMILY_MODULES)
        raise UnsupportedFamilyError(
            f"model family '{info.model_family.value}' of {info.name} is not implemented; supported: {supported}"
        )
    if info.task not in FAMILY_TASKS[info.model_family]:
        raise UnsupportedFamilyError(
            f"{info.name}: family '{info.model_family.value}' does not do task '{info.task.value}'"
        )


def build_network(info: ModelInfo) -> Any:
    """Instantiate the family's torch module with random weights (weights load separately)."""
    check_supported(info)
    module = importlib.import_module(FAMILY_MODULES[info.model_family])
    return module.build_model(info.config, info.num_classes)
