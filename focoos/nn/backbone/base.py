"""`BackboneConfig`: the fields every backbone config has, and the parse of a `backbone_config` dict.

A dict names its backbone by `model_type`; `BackboneConfig.from_dict` returns that backbone's config
class (Focoos' ConfigBackboneManager.from_dict does the same).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from focoos.errors import ModelConfigError
from focoos.nn.config import DictClass

__all__ = ["BACKBONE_CONFIGS", "BackboneConfig", "backbone_config_class"]

# model_type -> "module.Class" under focoos.nn.backbone: the backbones this package builds.
BACKBONE_CONFIGS: dict[str, str] = {
    "stdc": "stdc.STDCConfig",
    "resnet": "resnet.ResnetConfig",
    "csp_darknet": "csp_darknet.CSPConfig",
}


def backbone_config_class(model_type: str) -> type[BackboneConfig]:
    """The config class of a backbone `model_type`; ModelConfigError for one this package does not build."""
    if model_type not in BACKBONE_CONFIGS:
        raise ModelConfigError(
            f"backbone model_type {model_type!r} is not supported; supported: {', '.join(sorted(BACKBONE_CONFIGS))}",
            field="model_type",
        )
    module, name = BACKBONE_CONFIGS[model_type].split(".")
    return getattr(importlib.import_module(f"focoos.nn.backbone.{module}"), name)


@dataclass
class BackboneConfig(DictClass):
    use_pretrained: bool = False
    backbone_url: str | None = None  # only used if use_pretrained is True
    model_type: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], _path: str | None = None, **overrides: Any) -> Any:
        """On the base class, the config of the backbone that `model_type` names; on a backbone's own class,
        that class (its `model_type`, if given, must match)."""
        if not isinstance(data, Mapping):
            raise ModelConfigError(f"{_path or cls.__name__}: expected a dict, got {type(data).__name__}")
        values = {**data, **overrides}
        owner = _path or cls.__name__
        model_type = values.get("model_type")
        if cls is BackboneConfig:
            if not isinstance(model_type, str):
                raise ModelConfigError(
                    f"{owner}: 'model_type' must name the backbone (one of {', '.join(sorted(BACKBONE_CONFIGS))}),"
                    f" got {model_type!r}", field="model_type",
                )
            try:
                target = backbone_config_class(model_type)
            except ModelConfigError as exc:
                raise ModelConfigError(f"{owner}: {exc}", field="model_type") from None
            return target.from_dict(values, _path=_path)
        default_type = cls.defaults()["model_type"]
        if model_type is not None and model_type != default_type:
            raise ModelConfigError(f"{owner}.model_type: {cls.__name__} is {default_type!r}, got {model_type!r}",
                                   field="model_type")
        return super().from_dict(values, _path=_path)
