"""Losses per model family; `build_criterion(model_info)` builds the one the family's spec names."""

from __future__ import annotations

from torch import nn

from focoos.models.family import family_spec
from focoos.ports import ModelInfo


def build_criterion(info: ModelInfo) -> nn.Module:
    return family_spec(info.model_family).build_criterion(info)
