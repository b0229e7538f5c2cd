"""FAI-MF: a MaskFormer (Mask2Former style) network for instance and semantic segmentation.

backbone (STDC or timm, strides 4/8/16/32) -> FPN pixel decoder (mask features at stride 4, memory at
strides 32/16/8) -> queries selected from the most object-like memory tokens -> transformer decoder
whose queries cross-attend one scale per layer, masked to the foreground their previous layer
predicted (masked attention) -> per query class logits and a mask (query embedding . pixel features).

Attention is written with plain matmul/softmax and an additive finite mask so the graph exports
to ONNX (opset >= 17) and TorchScript without custom ops, at any batch and input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.fai_detr.modelling import MLP, ConvBNAct, build_backbone, sincos_pos_embed

MASKED = -1e4  # finite "minus infinity": stays finite in fp16 and TensorRT
DEFAULT_PIXEL_MEAN = (123.675, 116.28, 103.53)
DEFAULT_PIXEL_STD = (58.395, 57.12, 57.375)


class Attention(nn.Module):
    """Multi-head attention with an optional additive bias [B, heads, Lq, Lk] (masked attention)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def _split(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)  # [B, h, L, d]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None) -> Tensor:
        q, k, v = self._split(self.q(query)), self._split(self.k(key)), self._split(self.v(value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, h, Lq, Lk]
        if bias is not None:
            scores = scores + bias
        out = scores.softmax(-1) @ v  # [B, h, Lq, d]
        return self.out(out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1))


class QueryLayer(nn.Module):
    """Mask2Former decoder layer: (masked) cross-attention, self-attention, FFN; post-norm."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.cross, self.self_attn = Attention(dim, heads), Attention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, memory: Tensor, memory_pos: Tensor, bias: Tensor | None) -> Tensor:
        x = self.norms[0](x + self.drop(self.cross(x + pos, memory + memory_pos, memory, bias)))
        q = x + pos
        x = self.norms[1](x + self.drop(self.self_attn(q, q, x)))
        return self.norms[2](x + self.drop(self.ffn(x)))


class MaskPredictor(nn.Module):
    """Shared prediction head: class logits over C+1 (last = no object) and mask logits at stride 4."""

    def __init__(self, dim: int, mask_dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.class_head = nn.Linear(dim, num_classes + 1)
        self.mask_head = MLP(dim, dim, mask_dim, 3)

    def forward(self, queries: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor]:
        x = self.norm(queries)  # [B, Q, D]
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_head(x), mask_features)  # [B, Q, h, w]
        return self.class_head(x), masks


def attention_bias(mask_logits: Tensor, size: Tensor | tuple, heads: int) -> Tensor:
    """Masked attention: a query sees only pixels its last mask calls foreground (all, if none)."""
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)  # [B, Q, h, w]
    background = resized.flatten(2) < 0.0  # sigmoid < 0.5
    background = background & ~background.all(-1, keepdim=True)
    bias = background.to(mask_logits.dtype) * MASKED  # [B, Q, h*w]
    return bias.unsqueeze(1).expand(-1, heads, -1, -1).detach()


def export_outputs(pred_logits: Tensor, pred_masks: Tensor) -> tuple[Tensor, Tensor]:
    """Serving form: class probabilities without "no object" [B,Q,C] and mask probabilities [B,Q,h,w]."""
    return pred_logits.softmax(-1)[..., :-1], pred_masks.sigmoid()


def training_outputs(predictions: list[tuple[Tensor, Tensor]]) -> dict:
    """Set-loss form: the last layer's raw logits/masks, earlier layers as aux_outputs."""
    *aux, (logits, masks) = predictions
    return {
        "pred_logits": logits,
        "pred_masks": masks,
        "aux_outputs": [{"pred_logits": lg, "pred_masks": mk} for lg, mk in aux],
    }


class PixelDecoder(nn.Module):
    """FPN over strides 32 -> 4: memory maps for the decoder (32, 16, 8) and mask features (stride 4)."""

    def __init__(self, in_channels: list[int], dim: int, mask_dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNAct(c, dim, 1) for c in in_channels)  # strides 4, 8, 16, 32
        self.output = nn.ModuleList(ConvBNAct(dim, dim, 3, act=nn.ReLU) for _ in in_channels[:-1])
        self.mask_features = nn.Conv2d(dim, mask_dim, 1)

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        laterals = [proj(f) for proj, f in zip(self.lateral, feats, strict=True)]
        x = laterals[-1]
        outs = [x]  # coarse to fine
        for lateral, conv in zip(reversed(laterals[:-1]), reversed(self.output), strict=True):
            x = conv(lateral + F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False))
            outs.append(x)
        return outs[:3], self.mask_features(outs[-1])  # [s32, s16, s8] and [B, mask_dim, H/4, W/4]


class MaskedDecoder(nn.Module):
    """Learned queries refined layer by layer, cycling through the memory scales coarse to fine."""

    def __init__(
        self, dim: int, mask_dim: int, num_classes: int, num_queries: int, heads: int, ffn: int, num_layers: int,
        dropout: float, levels: int = 3,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dim, self.heads, self.levels, self.num_queries = dim, heads, levels, num_queries
        self.level_embed = nn.Embedding(levels, dim)
        self.layers = nn.ModuleList(QueryLayer(dim, heads, ffn, dropout) for _ in range(num_layers))
        self.predictor = MaskPredictor(dim, mask_dim, num_classes)

    def select_queries(self, tokens: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Queries start at the Q memory tokens the class head finds most object-like (Mask DINO style).

        Learned queries must find objects from nothing and converge slowly; starting at confident
        tokens gives every query content and a position from the first layer. The initial prediction
        from these tokens gets the set loss, which trains the head that ranks them.
        """
        scores = self.predictor.class_head(self.predictor.norm(tokens)).softmax(-1)[..., :-1].amax(-1)  # [B, N]
        k = min(self.num_queries, tokens.shape[1])
        index = scores.topk(k, dim=1).indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])  # [B, Q, D]
        return tokens.gather(1, index), positions.gather(1, index)

    def forward(self, memories: list[Tensor], mask_features: Tensor) -> list[tuple[Tensor, Tensor]]:
        batch = mask_features.shape[0]
        tokens, positions, sizes = [], [], []
        for level, memory in enumerate(memories):
            h, w = memory.shape[2], memory.shape[3]
            tokens.append(memory.flatten(2).transpose(1, 2))  # [B, h*w, D]
            positions.append(sincos_pos_embed(h, w, self.dim, memory) + self.level_embed.weight[level])
            sizes.append(memory.shape[-2:])
        x, pos = self.select_queries(torch.cat(tokens, 1), torch.cat(positions, 1).expand(batch, -1, -1))
        predictions = [self.predictor(x, mask_features)]
        for i, layer in enumerate(self.layers):
            level = i % self.levels
            bias = attention_bias(predictions[-1][1], sizes[level], self.heads)
            x = layer(x, pos, tokens[level], positions[level], bias)
            predictions.append(self.predictor(x, mask_features))
        return predictions  # one (logits [B,Q,C+1], masks [B,Q,H/4,W/4]) per layer, plus the initial one


class InputNormalizer(nn.Module):
    """Raw 0..255 RGB (uint8 or float) -> normalised float; the constants come from the config."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        mean = torch.tensor(config.get("pixel_mean", DEFAULT_PIXEL_MEAN), dtype=torch.float32)
        std = torch.tensor(config.get("pixel_std", DEFAULT_PIXEL_STD), dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images.float() - self.mean) / self.std


class FaiMaskFormer(nn.Module):
    """images [B,3,H,W] raw RGB -> eval: logits [B,Q,C] (softmax, no object dropped), masks [B,Q,H/4,W/4]
    (sigmoid); training: the dict of `training_outputs`."""

    output_names = ("logits", "masks")
    # Besides the batch, the mask maps follow the input size.
    output_axes = {"masks": {2: "mask_height", 3: "mask_width"}}

    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__()
        get = config.get
        dim, mask_dim = int(get("hidden_dim", 256)), int(get("mask_dim", 256))
        self.normalize = InputNormalizer(config)
        self.backbone = build_backbone(get("backbone", "stdc2"), with_stride4=True)
        self.pixel_decoder = PixelDecoder(self.backbone.channels, dim, mask_dim)
        self.decoder = MaskedDecoder(
            dim, mask_dim, num_classes, int(get("num_queries", 100)), int(get("num_heads", 8)),
            int(get("dim_feedforward", 1024)), int(get("num_decoder_layers", 6)), float(get("dropout", 0.0)),
        )  # fmt: skip

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict:
        memories, mask_features = self.pixel_decoder(self.backbone(self.normalize(images)))
        predictions = self.decoder(memories, mask_features)
        if self.training:
            return training_outputs(predictions)
        return export_outputs(*predictions[-1])


def build_model(config: dict, num_classes: int) -> FaiMaskFormer:
    """Build FAI-MF from a registry config (postprocessing keys such as top_k are ignored here)."""
    return FaiMaskFormer(config, num_classes)
