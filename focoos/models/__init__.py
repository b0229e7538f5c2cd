"""Model families: one sub-package per family, each declaring itself once in `FAMILY` (see family.py).

The families share blocks through `focoos.models.layers` and `focoos.models.backbones`, never each other's
networks; torch is imported only when a network is built.
"""

from __future__ import annotations

from typing import Any

from focoos.models.family import FamilySpec, families, family_spec, register_family
from focoos.ports import ModelInfo


def check_supported(info: ModelInfo) -> FamilySpec:
    """The model's family spec; UnsupportedFamilyError unless this package can build and run the model."""
    spec = family_spec(info.model_family)
    spec.check_task(info)
    return spec


def build_network(info: ModelInfo) -> Any:
    """Instantiate the family's torch module with random weights (weights load separately)."""
    return check_supported(info).build_network(info)


__all__ = ["FamilySpec", "build_network", "check_supported", "families", "family_spec", "register_family"]
