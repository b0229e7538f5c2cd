"""Classification loss: binary cross-entropy on one-hot targets, matching the sigmoid used at inference."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ClassificationCriterion(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
        target = F.one_hot(labels, self.num_classes).to(logits.dtype)  # [B, C]
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / max(1, labels.numel())
        return {"loss_bce": loss}


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    return torch.stack(list(losses.values())).sum()
