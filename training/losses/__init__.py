"""Losses per model family; `build_criterion(model_info)` picks the family's."""

from __future__ import annotations

from torch import nn

from focoos.ports import ModelFamily, ModelInfo


def build_criterion(info: ModelInfo) -> nn.Module:
    if info.model_family == ModelFamily.DETR:
        from .detr import DetrCriterion

        return DetrCriterion(info.num_classes)
    if info.model_family == ModelFamily.IMAGE_CLASSIFIER:
        from .classification import ClassificationCriterion

        return ClassificationCriterion(info.num_classes, info.config)
    if info.model_family in (ModelFamily.MASKFORMER, ModelFamily.BISENETFORMER):
        from .maskformer import MaskFormerCriterion

        return MaskFormerCriterion.from_config(info.num_classes, info.config)
    if info.model_family == ModelFamily.RTMO:
        from .rtmo import RTMOCriterion

        return RTMOCriterion.from_config(info.num_classes, info.config)
    raise NotImplementedError(f"no training loss for family {info.model_family.value}")
