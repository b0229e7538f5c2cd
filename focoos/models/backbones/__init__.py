"""Backbones in Focoos' config schema and state-dict layout, shared by the model families.

`build_backbone(config)` takes a typed backbone config (`focoos.nn.backbone.*Config`) or Focoos'
`backbone_config` dict. `use_pretrained`/`backbone_url` are ignored on purpose: inference is offline and
the full-model checkpoint carries the backbone weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from focoos.models.backbones.csp_darknet import CSPDarknet
from focoos.models.backbones.resnet import FrozenBatchNorm2d, ResNet
from focoos.models.backbones.stdc import STDC
from focoos.nn.backbone.base import BackboneConfig

BACKBONES: dict[str, type[nn.Module]] = {"stdc": STDC, "resnet": ResNet, "csp_darknet": CSPDarknet}

__all__ = ["BACKBONES", "CSPDarknet", "STDC", "FrozenBatchNorm2d", "ResNet", "build_backbone"]


def build_backbone(backbone_config: BackboneConfig | Mapping[str, Any]) -> nn.Module:
    """Build the backbone its config names; it maps a normalised image to {"res2".."res5"}.

    A dict is parsed first (ModelConfigError names a field that does not fit)."""
    config = backbone_config if isinstance(backbone_config, BackboneConfig) else BackboneConfig.from_dict(
        backbone_config, _path="backbone_config")
    if config.model_type not in BACKBONES:
        raise ValueError(f"backbone model_type {config.model_type!r} is not supported; supported: {sorted(BACKBONES)}")
    return BACKBONES[config.model_type](config)
