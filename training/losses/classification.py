"""Classification loss: Focoos' FAI-CLS loss (BCE with pos_weight, or focal), from the model's config."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from focoos.models.fai_cls.modelling import DEFAULTS, LOSS_KEYS, ClassificationLoss


class ClassificationCriterion(nn.Module):
    """Takes the logits of the network in training mode and class labels [B] (or multi-hot [B, C])."""

    def __init__(self, num_classes: int, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        options = {key: {**DEFAULTS, **(config or {})}[key] for key in LOSS_KEYS}
        self.loss = ClassificationLoss(num_classes, **options)

    @classmethod
    def from_config(cls, num_classes: int, config: dict[str, Any]) -> ClassificationCriterion:
        return cls(num_classes, config)

    def forward(self, logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
        target = F.one_hot(labels, self.num_classes) if labels.ndim == 1 else labels  # [B, C]
        return self.loss(logits, target)


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    return torch.stack(list(losses.values())).sum()
