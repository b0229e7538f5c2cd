"""FAI-MF (Mask2Former style) in Focoos' state-dict layout: Focoos' checkpoints load strictly and answer alike.

pixel_decoder: backbone (res2..res5) -> optional transformer encoder on res5 -> top-down FPN (nearest
upsampling); its three coarsest outputs (strides 32, 16, 8) are the decoder's memory and a 3x3 conv of the
stride-4 output gives the mask features. head.predictor: learned queries refined layer by layer (masked
cross-attention on one scale per layer, self-attention, FFN; pre-norm); every layer predicts class logits
(C + 1, the last is "no object") and mask logits (query embedding . mask features).

Eval returns ("masks", "logits"): sigmoid masks at stride 4 (Focoos upsamples them to the input size inside
its graph; we leave that to the postprocessing, which resizes straight to the original image and moves 16x
fewer bytes between serving steps) and class probabilities without "no object". Attention is plain
matmul/softmax with a finite additive mask, so the graph exports to ONNX/TorchScript at any batch and size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone
from focoos.models.fai_mf.config import MaskFormerConfig
from focoos.models.layers import (
    MASKED,
    MASKFORMER_HEADS,
    Attention,
    Conv2d,
    MaskFormerNetwork,
    sine_position,
    xavier_init,
)

# MaskFormerConfig's defaults in JSON form, for readers of the plain config dict (ModelManager).
DEFAULTS: dict[str, Any] = MaskFormerConfig.defaults()
NUM_SCALES = 3


# -- pixel decoder
class EncoderLayer(nn.Module):
    """Transformer encoder layer (self-attention + FFN), pre- or post-norm."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.self_attn = Attention(dim, heads, dropout)
        self.linear1 = nn.Linear(dim, ffn)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        y = self.norm1(x) if self.pre_norm else x
        x = x + self.dropout(self.self_attn(y + pos, y + pos, y))
        if not self.pre_norm:
            x = self.norm1(x)
        y = self.norm2(x) if self.pre_norm else x
        x = x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(y)))))
        return x if self.pre_norm else self.norm2(x)


class Encoder(nn.Module):
    def __init__(self, layers: list[EncoderLayer], norm: nn.Module | None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return x if self.norm is None else self.norm(x)


class TransformerEncoderOnly(nn.Module):
    """Encoder over the flattened res5 map (keys `transformer.encoder.*`)."""

    def __init__(self, dim: int, heads: int, ffn: int, num_layers: int, dropout: float, pre_norm: bool = True):
        super().__init__()
        layers = [EncoderLayer(dim, heads, ffn, dropout, pre_norm) for _ in range(num_layers)]
        self.encoder = Encoder(layers, nn.LayerNorm(dim) if pre_norm else None)
        xavier_init(self)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        pos = sine_position(x, c // 2)  # [1, HW, C]
        out = self.encoder(x.flatten(2).transpose(1, 2), pos)  # [B, HW, C]
        return out.transpose(1, 2).reshape(b, c, h, w)


class TransformerFPN(nn.Module):
    """Backbone + FPN: mask features (stride 4) and multi-scale memory [stride 32, 16, 8]."""

    def __init__(self, backbone: nn.Module, feat_dim: int, out_dim: int, transformer_layers: int,
                 transformer_dropout: float, transformer_nheads: int, transformer_dim_feedforward: int) -> None:
        super().__init__()
        self.backbone = backbone
        shapes = sorted(backbone.output_shape().items(), key=lambda item: item[1][1])  # by stride: res2..res5
        self.in_features = [name for name, _ in shapes]
        channels = [c for _, (c, _) in shapes]
        if transformer_layers > 0:
            self.input_proj = Conv2d(channels[-1], feat_dim, kernel_size=1)
            self.transformer = TransformerEncoderOnly(feat_dim, transformer_nheads, transformer_dim_feedforward,
                                                      transformer_layers, transformer_dropout)
        else:
            self.input_proj = self.transformer = None
        last = len(channels) - 1
        for i, ch in enumerate(channels):
            if i < last:
                self.add_module(f"adapter_{i + 1}", Conv2d(ch, feat_dim, 1, bias=False, norm=nn.BatchNorm2d(feat_dim)))
            in_ch = feat_dim if (i < last or transformer_layers > 0) else ch
            self.add_module(f"layer_{i + 1}", Conv2d(in_ch, feat_dim, 3, padding=1, bias=False,
                                                     norm=nn.BatchNorm2d(feat_dim), relu=True))
        self.mask_features = Conv2d(feat_dim, out_dim, 3, padding=1)

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = self.backbone(images)
        memory: list[Tensor] = []
        y = features[self.in_features[-1]]
        if self.transformer is not None:
            y = self.transformer(self.input_proj(y))
        y = getattr(self, f"layer_{len(self.in_features)}")(y)
        memory.append(y)
        for i in range(len(self.in_features) - 2, -1, -1):  # res4 -> res2
            lateral = getattr(self, f"adapter_{i + 1}")(features[self.in_features[i]])
            y = getattr(self, f"layer_{i + 1}")(lateral + F.interpolate(y, size=lateral.shape[-2:], mode="nearest"))
            if len(memory) < NUM_SCALES:
                memory.append(y)
        return self.mask_features(y), memory


# -- transformer decoder
def attention_bias(mask_logits: Tensor, size: torch.Size) -> Tensor:
    """Masked attention: a query attends only where its last mask is foreground (everywhere if nowhere).

    Float ops and a min (exact in fp16), expanded over the heads: FAI-MF's exported graph.
    """
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    background = (resized.flatten(2) < 0).to(mask_logits.dtype)  # [B, Q, hw]
    some_foreground = (background.amin(-1, keepdim=True) < 0.5).to(mask_logits.dtype)
    bias = (background * some_foreground * MASKED).detach()
    return bias.unsqueeze(1).expand(-1, MASKFORMER_HEADS, -1, -1)  # [B, heads, Q, hw]


class FAIMaskFormer(MaskFormerNetwork):
    """images [B,3,H,W] raw RGB 0..255 -> eval: (masks [B,Q,H/4,W/4] sigmoid, logits [B,Q,C] probabilities);
    training: {"pred_logits" [B,Q,C+1] raw, "pred_masks" [B,Q,H/4,W/4] raw, "aux_outputs": earlier layers}."""

    def __init__(self, config: MaskFormerConfig | Mapping[str, Any], num_classes: int | None = None) -> None:
        cfg = MaskFormerConfig.parse(config, num_classes)
        num_classes = cfg.num_classes  # None: the config's, as Focoos builds it
        decoder = TransformerFPN(
            build_backbone(cfg.backbone_config), cfg.pixel_decoder_feat_dim, cfg.pixel_decoder_out_dim,
            cfg.pixel_decoder_transformer_layers, cfg.pixel_decoder_transformer_dropout,
            cfg.pixel_decoder_transformer_nheads, cfg.pixel_decoder_transformer_dim_feedforward,
        )  # fmt: skip
        super().__init__(cfg, num_classes, decoder, levels=NUM_SCALES, attention_bias=attention_bias)


def build_model(config: MaskFormerConfig | Mapping[str, Any], num_classes: int) -> FAIMaskFormer:
    """FAI-MF from its typed config or Focoos' JSON form of it (postprocessing fields such as top_k are not the
    network's; a config that does not fit raises ModelConfigError). `num_classes` wins over the config's."""
    return FAIMaskFormer(config, num_classes)
