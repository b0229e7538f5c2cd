"""CSP-Darknet backbone config (Focoos' `focoos.nn.backbone.csp_darknet.CSPConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from focoos.nn.backbone.base import BackboneConfig


@dataclass
class CSPConfig(BackboneConfig):
    size: Literal["small", "medium", "large"] = "small"
    model_type: str = "csp_darknet"
