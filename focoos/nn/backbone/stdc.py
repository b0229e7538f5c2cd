"""STDC backbone config (Focoos' `focoos.nn.backbone.stdc.STDCConfig`): `size` wins over base/layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from focoos.nn.backbone.base import BackboneConfig


@dataclass
class STDCConfig(BackboneConfig):
    in_chans: int = 3
    base: int = 64
    layers: list[int] = field(default_factory=lambda: [4, 5, 3])
    out_features: list[str] = field(default_factory=lambda: ["res2", "res3", "res4", "res5"])
    model_type: str = "stdc"
    block_num: int = 4
    block_type: str = "cat"
    backbone_url: str | None = None
    size: Literal["nano", "small", "large"] | None = None
    use_conv_last: bool = False
