"""Image classifier: a timm backbone with a linear head; normalisation inside the graph."""

from __future__ import annotations

import timm
import torch
from torch import Tensor, nn

DEFAULT_PIXEL_MEAN = (123.675, 116.28, 103.53)
DEFAULT_PIXEL_STD = (58.395, 57.12, 57.375)


class FaiClassifier(nn.Module):
    """images [B,3,H,W] RGB 0..255 (uint8 or float) -> raw class logits [B,C]."""

    output_names = ("logits",)

    def __init__(self, backbone: str, num_classes: int, pixel_mean: tuple, pixel_std: tuple) -> None:
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=num_classes)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x = (images.float() - self.pixel_mean) / self.pixel_std
        return self.backbone(x)


def build_model(config: dict, num_classes: int) -> FaiClassifier:
    return FaiClassifier(
        backbone=config.get("backbone", "resnet18d"),
        num_classes=num_classes,
        pixel_mean=tuple(config.get("pixel_mean", DEFAULT_PIXEL_MEAN)),
        pixel_std=tuple(config.get("pixel_std", DEFAULT_PIXEL_STD)),
    )
