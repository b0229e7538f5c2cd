"""Backbones in Focoos' config schema and state-dict layout, shared by the model families.

`build_backbone(config)` takes Focoos' `backbone_config` dict. `use_pretrained`/`backbone_url` are
ignored on purpose: inference is offline and the full-model checkpoint carries the backbone weights.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from focoos.models.backbones.csp_darknet import CSPDarknet
from focoos.models.backbones.resnet import FrozenBatchNorm2d, ResNet
from focoos.models.backbones.stdc import STDC

BACKBONES: dict[str, type[nn.Module]] = {"stdc": STDC, "resnet": ResNet, "csp_darknet": CSPDarknet}

__all__ = ["BACKBONES", "CSPDarknet", "STDC", "FrozenBatchNorm2d", "ResNet", "build_backbone"]


def build_backbone(backbone_config: dict[str, Any]) -> nn.Module:
    """Build the backbone named by `model_type`; it maps a normalised image to {"res2".."res5"}."""
    model_type = backbone_config.get("model_type", "")
    if model_type not in BACKBONES:
        raise ValueError(f"backbone model_type {model_type!r} is not supported; supported: {sorted(BACKBONES)}")
    return BACKBONES[model_type](backbone_config)
