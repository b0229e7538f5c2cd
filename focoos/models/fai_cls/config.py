"""FAI-CLS's typed config: Focoos' `ClassificationConfig` fields and defaults, plus `top_k` (ours)."""

from __future__ import annotations

from dataclasses import dataclass, field

from focoos.nn.backbone.base import BackboneConfig
from focoos.nn.config import ModelConfig

__all__ = ["ClassificationConfig"]


@dataclass
class ClassificationConfig(ModelConfig):
    backbone_config: BackboneConfig
    num_classes: int

    # Image classification configuration
    resolution: int = 224
    pixel_mean: list[float] = field(default_factory=lambda: [123.675, 116.28, 103.53])
    pixel_std: list[float] = field(default_factory=lambda: [58.395, 57.12, 57.375])

    # Head configuration
    hidden_dim: int = 512
    dropout_rate: float = 0.2
    features: str = "res5"
    num_layers: int = 1
    dense_prediction: bool = False

    # Loss configuration
    use_focal_loss: bool = False
    focal_alpha: float = 0.75
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    pos_weight: float = 10.0

    # Ours, not Focoos': scores returned per image (None: one per class)
    top_k: int | None = None
