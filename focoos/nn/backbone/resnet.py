"""ResNet backbone config (Focoos' `focoos.nn.backbone.resnet.ResnetConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from focoos.nn.backbone.base import BackboneConfig


@dataclass
class ResnetConfig(BackboneConfig):
    in_chans: int = 3
    depth: int = 50
    variant: str = "d"
    freeze_at: int = -1
    num_stages: int = 4
    freeze_norm: bool = True
    model_type: str = "resnet"
    act: str = "relu"
    pretrained: bool = False
