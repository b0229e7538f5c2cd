"""The toy detector's network: any input size, `num_queries` boxes (xyxy in 0..1) and sigmoid scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ToyDetector(nn.Module):
    def __init__(self, num_queries: int, num_classes: int) -> None:
        super().__init__()
        self.num_queries, self.num_classes = num_queries, num_classes
        self.stem = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.head = nn.Linear(8, num_queries * (4 + num_classes))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.stem(images / 255.0).relu().mean((2, 3))
        out = self.head(features).view(-1, self.num_queries, 4 + self.num_classes)
        centre, size = out[..., :2].sigmoid(), out[..., 2:4].sigmoid() * 0.5
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1).clamp(0, 1)
        return boxes, out[..., 4:].sigmoid()


def build_model(config: dict, num_classes: int) -> ToyDetector:
    from . import NUM_QUERIES

    return ToyDetector(int(config.get("num_queries") or NUM_QUERIES), num_classes)
