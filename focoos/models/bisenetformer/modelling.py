"""BiSeNetFormer: a real-time semantic segmentation network with a MaskFormer query head.

Two paths (BiSeNet): a shallow spatial path keeps detail at stride 8; the context path (STDC or
timm backbone, strides 8/16/32) adds attention-refined context. A fusion module merges them into
pixel features at stride 8, upsampled to stride 4 for the masks. A light query head (a few
unmasked cross-attention layers over the stride-32 context) predicts class logits and one mask per
query, so the outputs, losses and postprocessing are those of FAI-MF.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.fai_detr.modelling import ConvBNAct, build_backbone, sincos_pos_embed
from focoos.models.fai_mf.modelling import InputNormalizer, MaskPredictor, QueryLayer, export_outputs, training_outputs


class AttentionRefinement(nn.Module):
    """3x3 conv, then a channel gate from global average pooling (BiSeNet ARM)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, cout, 3, act=nn.ReLU)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNAct(cout, cout, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x * self.gate(x)


class FeatureFusion(nn.Module):
    """Concatenate spatial and context features, then re-weight channels (BiSeNet FFM)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, cout, 1, act=nn.ReLU)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout, 1), nn.Sigmoid())

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        x = self.conv(torch.cat([spatial, context], dim=1))
        return x + x * self.gate(x)


class ContextPath(nn.Module):
    """Backbone strides 16/32 refined with ARMs plus a global context, merged top-down to stride 8."""

    def __init__(self, backbone: str, dim: int) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        c8, c16, c32 = self.backbone.channels
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNAct(c32, dim, 1, act=nn.ReLU))
        self.arm32, self.arm16 = AttentionRefinement(c32, dim), AttentionRefinement(c16, dim)
        self.refine32 = ConvBNAct(dim, dim, 3, act=nn.ReLU)
        self.refine16 = ConvBNAct(dim, dim, 3, act=nn.ReLU)
        self.lateral8 = ConvBNAct(c8, dim, 1, act=nn.ReLU)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f8, f16, f32 = self.backbone(x)
        up32 = self.refine32(self.arm32(f32) + self.global_context(f32))  # [B, D, H/32, W/32]
        up16 = F.interpolate(up32, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        up16 = self.refine16(self.arm16(f16) + up16)
        context8 = self.lateral8(f8) + F.interpolate(up16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return context8, up32  # [B, D, H/8, W/8] for the pixels, [B, D, H/32, W/32] for the queries


class BiSeNetFormer(nn.Module):
    """images [B,3,H,W] raw RGB -> eval: logits [B,Q,C] (softmax, no object dropped), masks [B,Q,H/4,W/4]
    (sigmoid); training: the dict of FAI-MF's `training_outputs`."""

    output_names = ("logits", "masks")
    output_axes = {"masks": {2: "mask_height", 3: "mask_width"}}

    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__()
        get = config.get
        dim, mask_dim, spatial = int(get("hidden_dim", 128)), int(get("mask_dim", 128)), int(get("spatial_dim", 64))
        heads = int(get("num_heads", 4))
        self.dim = dim
        self.normalize = InputNormalizer(config)
        self.spatial_path = nn.Sequential(
            ConvBNAct(3, spatial, 7, 2, act=nn.ReLU),
            ConvBNAct(spatial, spatial, 3, 2, act=nn.ReLU),
            ConvBNAct(spatial, spatial, 3, 2, act=nn.ReLU),
        )  # stride 8
        self.context_path = ContextPath(get("backbone", "stdc1"), dim)
        self.fusion = FeatureFusion(spatial + dim, dim)
        self.pixel_head = nn.Sequential(ConvBNAct(dim, dim, 3, act=nn.ReLU), nn.Conv2d(dim, mask_dim, 1))
        num_queries = int(get("num_queries", 100))
        self.query_feat = nn.Embedding(num_queries, dim)
        self.query_pos = nn.Embedding(num_queries, dim)
        ffn, dropout = int(get("dim_feedforward", 512)), float(get("dropout", 0.0))
        num_layers = int(get("num_decoder_layers", 2))
        self.layers = nn.ModuleList(QueryLayer(dim, heads, ffn, dropout) for _ in range(num_layers))
        self.predictor = MaskPredictor(dim, mask_dim, num_classes)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict:
        x = self.normalize(images)
        context8, context32 = self.context_path(x)
        pixels8 = self.fusion(self.spatial_path(x), context8)  # [B, D, H/8, W/8]
        stride4 = (pixels8.shape[2] * 2, pixels8.shape[3] * 2)
        mask_features = self.pixel_head(F.interpolate(pixels8, size=stride4, mode="bilinear", align_corners=False))
        h, w = context32.shape[2], context32.shape[3]
        memory = context32.flatten(2).transpose(1, 2)  # [B, h*w, D]
        memory_pos = sincos_pos_embed(h, w, self.dim, memory)
        batch = images.shape[0]
        queries = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        pos = self.query_pos.weight.unsqueeze(0).expand(batch, -1, -1)
        predictions = []
        for layer in self.layers:
            queries = layer(queries, pos, memory, memory_pos, None)
            predictions.append(self.predictor(queries, mask_features))
        if self.training:
            return training_outputs(predictions)
        return export_outputs(*predictions[-1])


def build_model(config: dict, num_classes: int) -> BiSeNetFormer:
    """Build BiSeNetFormer from a registry config (postprocessing keys are ignored here)."""
    return BiSeNetFormer(config, num_classes)
