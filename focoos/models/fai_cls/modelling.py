"""FAI-CLS: multi-label image classifier (backbone -> pooled 1x1-conv head) in Focoos' layout.

The module names equal Focoos' (`backbone.*`, `cls_head.classifier.*`, `criterion.ce_loss.pos_weight`)
so Focoos' checkpoints load strictly. Images come in as raw 0..255 RGB and are normalised inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone
from focoos.models.fai_cls.config import ClassificationConfig
from focoos.models.layers import normalize, register_pixel_stats

# ClassificationConfig's defaults in JSON form, for readers of the plain config dict (the training loss,
# ModelManager).
DEFAULTS: dict[str, Any] = ClassificationConfig.defaults()
LOSS_KEYS = ("use_focal_loss", "focal_alpha", "focal_gamma", "label_smoothing", "pos_weight")


class ClassificationHead(nn.Module):
    """Global average pool -> (1x1 conv -> ReLU ->) dropout -> 1x1 conv to classes; dense_prediction
    instead classifies every location and max-pools the class maps."""

    def __init__(
        self, in_features: int, hidden_dim: int, num_classes: int, num_layers: int, dropout_rate: float, dense: bool
    ) -> None:
        super().__init__()
        pool = nn.Identity() if dense else nn.AdaptiveAvgPool2d(1)
        final_pool = nn.AdaptiveMaxPool2d(1) if dense else nn.Identity()
        if num_layers == 1:
            layers = [nn.Dropout(dropout_rate), nn.Conv2d(in_features, num_classes, 1)]
        elif num_layers == 2:
            layers = [
                nn.Conv2d(in_features, hidden_dim, 1),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout_rate),
                nn.Conv2d(hidden_dim, num_classes, 1),
            ]
        else:
            raise ValueError(f"fai_cls num_layers must be 1 or 2, got {num_layers}")
        self.classifier = nn.Sequential(pool, *layers, final_pool)

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(features).flatten(1)


class ClassificationLoss(nn.Module):
    """Focoos' multi-label loss: BCE with a per-class positive weight, or a sigmoid focal loss.

    `ce_loss` is kept (only for BCE) because its pos_weight buffer is part of Focoos' state dict.
    """

    def __init__(
        self,
        num_classes: int,
        use_focal_loss: bool = False,
        focal_alpha: float = 0.75,
        focal_gamma: float = 2.0,
        label_smoothing: float = 0.0,
        pos_weight: float = 10.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.use_focal_loss = use_focal_loss
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.label_smoothing = label_smoothing
        if not use_focal_loss:
            self.ce_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight * torch.ones(num_classes))

    def forward(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """logits [B, C]; targets [B, C] multi-hot (0/1)."""
        targets = targets.to(logits.dtype)
        if not self.use_focal_loss:
            pos_weight = self.ce_loss.pos_weight.to(logits.device, logits.dtype)
            return {"loss_cls": F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)}
        if self.label_smoothing > 0:
            targets = targets * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        prob = logits.sigmoid().clamp(min=1e-6, max=1.0)
        bce = targets * prob.log() + (1 - targets) * (1 - prob).log()
        loss = -self.focal_alpha * (1 - prob) ** self.focal_gamma * bce
        return {"loss_cls": loss.sum(dim=1).mean()}


class FaiClassifier(nn.Module):
    """images [B,3,H,W] RGB 0..255 (uint8 or float) -> raw class logits [B,C] (sigmoid gives scores).

    Eval mode returns the tuple (logits,); training mode the logits tensor, which the training
    criterion turns into Focoos' loss.
    """


    def __init__(self, config: ClassificationConfig | Mapping[str, Any], num_classes: int | None = None) -> None:
        super().__init__()
        cfg = ClassificationConfig.parse(config, num_classes)
        num_classes = cfg.num_classes  # None: the config's, as Focoos builds it
        register_pixel_stats(self, cfg.pixel_mean, cfg.pixel_std)
        self.backbone = build_backbone(cfg.backbone_config)
        shapes = self.backbone.output_shape()
        if cfg.features not in shapes:
            raise ValueError(f"fai_cls features must be one of {sorted(shapes)}, got {cfg.features!r}")
        self.in_features = cfg.features
        self.cls_head = ClassificationHead(
            shapes[self.in_features][0], cfg.hidden_dim, num_classes, cfg.num_layers, cfg.dropout_rate,
            cfg.dense_prediction,
        )
        self.criterion = ClassificationLoss(
            num_classes, use_focal_loss=cfg.use_focal_loss, focal_alpha=cfg.focal_alpha, focal_gamma=cfg.focal_gamma,
            label_smoothing=cfg.label_smoothing, pos_weight=cfg.pos_weight,
        )

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor]:
        logits = self.cls_head(self.backbone(normalize(images, self.pixel_mean, self.pixel_std))[self.in_features])
        return logits if self.training else (logits,)


def build_model(config: ClassificationConfig | Mapping[str, Any], num_classes: int) -> FaiClassifier:
    """FAI-CLS from its typed config or Focoos' JSON form of it (a config that does not fit raises
    ModelConfigError). `num_classes` wins over the config's."""
    return FaiClassifier(config, num_classes)


FAIClassification = FaiClassifier  # Focoos' name of this network
