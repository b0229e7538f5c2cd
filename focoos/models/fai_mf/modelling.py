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

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone

# Focoos' MaskFormerConfig defaults, for keys a config leaves out.
DEFAULTS: dict[str, Any] = {
    "num_queries": 100,
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
    "pixel_decoder_out_dim": 256,
    "pixel_decoder_feat_dim": 256,
    "pixel_decoder_transformer_layers": 0,
    "pixel_decoder_transformer_dropout": 0.0,
    "pixel_decoder_transformer_nheads": 8,
    "pixel_decoder_transformer_dim_feedforward": 1024,
    "transformer_predictor_out_dim": 256,
    "transformer_predictor_hidden_dim": 256,
    "transformer_predictor_dec_layers": 6,
    "transformer_predictor_dim_feedforward": 1024,
    "cls_sigmoid": False,
    "criterion_eos_coef": 0.1,
}
DECODER_HEADS = 8  # fixed in Focoos' decoder
NUM_SCALES = 3
MASKED = -1e4  # finite "minus infinity": exp underflows to 0 in fp32, and it stays finite in fp16/TensorRT


def _xavier(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class Conv2d(nn.Conv2d):
    """Conv with an optional norm and activation as attributes (keys `<name>.weight`, `<name>.norm.*`)."""

    def __init__(self, *args: Any, norm: nn.Module | None = None, relu: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.relu = relu
        nn.init.kaiming_uniform_(self.weight, a=1)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


class Attention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameters (packed in_proj, out_proj), batch first.

    `bias` is added to the scores ([B, heads, Lq, Lk]): the masked attention of the decoder.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, index: int) -> Tensor:
        dim = self.in_proj_bias.shape[0] // 3
        w = self.in_proj_weight[index * dim : (index + 1) * dim]
        b = self.in_proj_bias[index * dim : (index + 1) * dim]
        x = F.linear(x, w, b)
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)  # [B, h, L, d]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None) -> Tensor:
        q = self._heads(query, 0) * math.sqrt(1.0 / self.head_dim)
        k, v = self._heads(key, 1), self._heads(value, 2)
        scores = q @ k.transpose(-1, -2)  # [B, h, Lq, Lk]
        if bias is not None:
            scores = scores + bias
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)
        out = (weights @ v).transpose(1, 2)  # [B, Lq, h, d]
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


def sine_position(x: Tensor, num_feats: int, temperature: float = 10000.0, eps: float = 1e-6) -> Tensor:
    """DETR's normalised sine embedding of a map's positions: [1, 2 * num_feats, H, W] (y features first)."""
    h, w = x.shape[-2], x.shape[-1]
    ones = torch.ones(1, h, w, device=x.device, dtype=torch.float32)
    y = ones.cumsum(1)
    xs = ones.cumsum(2)
    y = y / (y[:, -1:, :] + eps) * (2 * math.pi)
    xs = xs / (xs[:, :, -1:] + eps) * (2 * math.pi)
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=x.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)

    def encode(embed: Tensor) -> Tensor:
        pos = embed[:, :, :, None] / dim_t  # [1, H, W, F]
        return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(3)

    return torch.cat((encode(y), encode(xs)), dim=3).permute(0, 3, 1, 2).to(x.dtype)


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
        _xavier(self)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        pos = sine_position(x, c // 2).flatten(2).transpose(1, 2)  # [1, HW, C]
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
class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.norm = nn.LayerNorm(dim)
        _xavier(self)

    def forward(self, x: Tensor, query_pos: Tensor) -> Tensor:
        y = self.norm(x)
        return x + self.self_attn(y + query_pos, y + query_pos, y)


class CrossAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = Attention(dim, heads)
        self.norm = nn.LayerNorm(dim)
        _xavier(self)

    def forward(self, x: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor, bias: Tensor) -> Tensor:
        return x + self.multihead_attn(self.norm(x) + query_pos, memory + pos, memory, bias)


class FFNLayer(nn.Module):
    def __init__(self, dim: int, ffn: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm = nn.LayerNorm(dim)
        _xavier(self)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class PredictionHeads(nn.Module):
    """Shared by every decoder layer: class logits [B, Q, C+1] and mask logits [B, Q, h, w] at stride 4."""

    def __init__(self, dim: int, num_classes: int, mask_dim: int) -> None:
        super().__init__()
        self.decoder_norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes + 1)
        self.mask_classifier = MLP(dim, dim, mask_dim, 3)

    def forward(self, x: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor]:
        x = self.decoder_norm(x)
        b, c, h, w = mask_features.shape
        masks = self.mask_classifier(x) @ mask_features.flatten(2)  # [B, Q, h*w]
        return self.classifier(x), masks.reshape(b, -1, h, w)


def attention_bias(mask_logits: Tensor, memory: Tensor, heads: int) -> Tensor:
    """Masked attention: a query attends only where its last mask is foreground (everywhere if nowhere)."""
    resized = F.interpolate(mask_logits, size=memory.shape[-2:], mode="bilinear", align_corners=False)
    background = (resized.flatten(2) < 0).to(mask_logits.dtype)  # [B, Q, hw]
    some_foreground = (background.amin(-1, keepdim=True) < 0.5).to(mask_logits.dtype)  # a min, exact in fp16
    bias = (background * some_foreground * MASKED).detach()
    return bias.unsqueeze(1).expand(-1, heads, -1, -1)  # [B, heads, Q, hw]


class MultiScaleMaskedTransformerDecoder(nn.Module):
    def __init__(self, in_channels: int, mask_dim: int, num_classes: int, hidden_dim: int, num_queries: int,
                 heads: int, dim_feedforward: int, dec_layers: int) -> None:
        super().__init__()
        self.heads, self.num_layers = heads, dec_layers
        self.num_levels = min(NUM_SCALES, dec_layers)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, heads) for _ in range(dec_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, heads) for _ in range(dec_layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(dec_layers))
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = nn.ModuleList(Conv2d(in_channels, hidden_dim, 1) for _ in range(self.num_levels))
        self.forward_prediction_heads = PredictionHeads(hidden_dim, num_classes, mask_dim)

    def forward(self, memory: list[Tensor], mask_features: Tensor) -> list[tuple[Tensor, Tensor]]:
        """One (class logits, mask logits) per layer, the learned queries' own prediction first."""
        batch = mask_features.shape[0]
        dim = self.query_feat.weight.shape[1]
        srcs, poss = [], []
        for i in range(self.num_levels):
            srcs.append(self.input_proj[i](memory[i]).flatten(2).transpose(1, 2))  # [B, hw, D]
            poss.append(sine_position(memory[i], dim // 2).flatten(2).transpose(1, 2))  # [1, hw, D]
        x = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0)
        predictions = [self.forward_prediction_heads(x, mask_features)]
        for i in range(self.num_layers):
            level = i % self.num_levels
            bias = attention_bias(predictions[-1][1], memory[level], self.heads)
            x = self.transformer_cross_attention_layers[i](x, query_pos, srcs[level], poss[level], bias)
            x = self.transformer_self_attention_layers[i](x, query_pos)
            x = self.transformer_ffn_layers[i](x)
            predictions.append(self.forward_prediction_heads(x, mask_features))
        return predictions


class EmptyWeight(nn.Module):
    """Holds Focoos' `head.criterion.empty_weight` (class weights of the CE loss, "no object" = eos_coef).

    The set criterion itself lives in focoos.training; the buffer stays so checkpoints round-trip.
    """

    def __init__(self, num_classes: int, eos_coef: float) -> None:
        super().__init__()
        weight = torch.ones(num_classes + 1)
        weight[-1] = eos_coef
        self.register_buffer("empty_weight", weight)


class MaskFormerHead(nn.Module):
    def __init__(self, num_classes: int, eos_coef: float, predictor: MultiScaleMaskedTransformerDecoder) -> None:
        super().__init__()
        self.criterion = EmptyWeight(num_classes, eos_coef)
        self.predictor = predictor

    def forward(self, mask_features: Tensor, memory: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        return self.predictor(memory, mask_features)


class FAIMaskFormer(nn.Module):
    """images [B,3,H,W] raw RGB 0..255 -> eval: (masks [B,Q,H/4,W/4] sigmoid, logits [B,Q,C] probabilities);
    training: {"pred_logits" [B,Q,C+1] raw, "pred_masks" [B,Q,H/4,W/4] raw, "aux_outputs": earlier layers}."""

    output_names = ("masks", "logits")
    output_axes = {"masks": {2: "mask_height", 3: "mask_width"}}  # besides the batch, masks follow the input size

    def __init__(self, config: dict[str, Any], num_classes: int) -> None:
        super().__init__()
        cfg = {**DEFAULTS, **config}
        self.cls_sigmoid = bool(cfg["cls_sigmoid"])
        self.pixel_decoder = TransformerFPN(
            build_backbone(cfg["backbone_config"]), int(cfg["pixel_decoder_feat_dim"]),
            int(cfg["pixel_decoder_out_dim"]), int(cfg["pixel_decoder_transformer_layers"]),
            float(cfg["pixel_decoder_transformer_dropout"]), int(cfg["pixel_decoder_transformer_nheads"]),
            int(cfg["pixel_decoder_transformer_dim_feedforward"]),
        )  # fmt: skip
        predictor = MultiScaleMaskedTransformerDecoder(
            int(cfg["pixel_decoder_out_dim"]), int(cfg["transformer_predictor_out_dim"]), num_classes,
            int(cfg["transformer_predictor_hidden_dim"]), int(cfg["num_queries"]), DECODER_HEADS,
            int(cfg["transformer_predictor_dim_feedforward"]), int(cfg["transformer_predictor_dec_layers"]),
        )  # fmt: skip
        self.head = MaskFormerHead(num_classes, float(cfg["criterion_eos_coef"]), predictor)
        self.register_buffer("pixel_mean", torch.tensor(cfg["pixel_mean"], dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg["pixel_std"], dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict[str, Any]:
        images = (images.float() - self.pixel_mean) / self.pixel_std
        predictions = self.head(*self.pixel_decoder(images))
        logits, masks = predictions[-1]
        if self.training:
            aux = [{"pred_logits": lg, "pred_masks": mk} for lg, mk in predictions[:-1]]
            return {"pred_logits": logits, "pred_masks": masks, "aux_outputs": aux}
        probs = logits.sigmoid() if self.cls_sigmoid else logits.softmax(-1)
        return masks.sigmoid(), probs[..., :-1]


def build_model(config: dict[str, Any], num_classes: int) -> FAIMaskFormer:
    """Build FAI-MF from Focoos' MaskFormerConfig dict (postprocessing keys such as top_k are ignored here)."""
    return FAIMaskFormer(config, num_classes)
