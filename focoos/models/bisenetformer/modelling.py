"""BiSeNetFormer in Focoos' config schema and state-dict layout.

pixel_decoder: backbone (strides 4..32) -> BiSeNet context path (attention refinement at strides 32
and 16, a global-average context, merged top-down to stride 8) -> feature fusion with the stride-8
backbone map -> mask features at stride 8. head.predictor: a Mask2Former decoder whose queries
cross-attend the context maps at strides 32 and 16 in turn, masked to their previous prediction.

Attention is plain matmul/softmax with a finite additive mask (the weights keep the
nn.MultiheadAttention names), so the graph exports to ONNX and TorchScript at any batch and size
and stays finite in fp16/TensorRT.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone

MASKED = -1e4  # a finite "minus infinity": exp underflows to 0 in fp32 and stays representable in fp16

# Focoos' BisenetFormerConfig defaults for the keys the network reads.
DEFAULTS: dict[str, Any] = {
    "num_queries": 100,
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
    "pixel_decoder_out_dim": 256,
    "pixel_decoder_feat_dim": 256,
    "transformer_predictor_out_dim": 256,
    "transformer_predictor_hidden_dim": 256,
    "transformer_predictor_dec_layers": 6,
    "transformer_predictor_dim_feedforward": 1024,
    "cls_sigmoid": False,
    "criterion_eos_coef": 0.1,
}
NUM_HEADS = 8  # fixed in Focoos, not a config key


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class AttentionRefinementModule(nn.Module):
    """Project, 3x3 conv, then re-weight channels with a gate from their global mean."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv = ConvBNReLU(cout, cout, 3)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv(self.proj(x))
        gate = self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))).sigmoid()
        return feat * gate


class ContextPath(nn.Module):
    """Refined stride-32 context plus a global average, merged top-down into strides 16 and 8."""

    def __init__(self, in_channels: list[int], dim: int) -> None:
        super().__init__()
        self.arm32 = AttentionRefinementModule(in_channels[3], dim)
        self.conv_avg = ConvBNReLU(in_channels[3], dim, 1)
        self.conv_head32 = ConvBNReLU(dim, dim, 3)
        self.arm16 = AttentionRefinementModule(in_channels[2], dim)
        self.conv_head16 = ConvBNReLU(dim, dim, 3)

    def forward(self, feat8: Tensor, feat16: Tensor, feat32: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ctx32 = self.arm32(feat32) + self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(ctx32, size=feat16.shape[-2:], mode="bilinear", align_corners=False))
        ctx16 = self.arm16(feat16) + up32
        ctx8 = self.conv_head16(F.interpolate(ctx16, size=feat8.shape[-2:], mode="bilinear", align_corners=False))
        return ctx8, ctx16, ctx32


class FeatureFusionModule(nn.Module):
    """Sum of projected spatial and context features, plus a squeeze-excitation re-weighted copy."""

    def __init__(self, cin_spatial: int, cin_context: int, cout: int) -> None:
        super().__init__()
        self.proj1 = nn.Conv2d(cin_spatial, cout, 1)
        self.proj2 = nn.Conv2d(cin_context, cout, 1)
        self.convblk = ConvBNReLU(cout, cout, 1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        feat = self.convblk(self.proj1(spatial) + self.proj2(context))
        gate = self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True)))).sigmoid()
        return feat + feat * gate


class BiseNet(nn.Module):
    """Backbone + context path + fusion: mask features (stride 8) and the context maps 32, 16, 8."""

    def __init__(self, backbone_config: dict, feat_dim: int, out_dim: int) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone_config)
        shapes = sorted(self.backbone.output_shape().items(), key=lambda item: item[1][1])  # by stride
        self.in_features = [name for name, _ in shapes]
        channels = [shape[0] for _, shape in shapes]
        self.cp = ContextPath(channels, feat_dim)
        self.ffm = FeatureFusionModule(channels[1], feat_dim, feat_dim)
        self.conv_out = ConvBNReLU(feat_dim, out_dim, 3)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = self.backbone(x)
        _, res3, res4, res5 = (features[name] for name in self.in_features)
        ctx8, ctx16, ctx32 = self.cp(res3, res4, res5)
        return self.conv_out(self.ffm(res3, ctx8)), [ctx32, ctx16, ctx8]


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's weights (in_proj_*, out_proj) with batch-first inputs and an additive bias."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor, index: int) -> Tensor:
        rows = slice(index * self.heads * self.head_dim, (index + 1) * self.heads * self.head_dim)
        x = F.linear(x, self.in_proj_weight[rows], self.in_proj_bias[rows])
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)  # [B, h, L, d]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None) -> Tensor:
        q = self._heads(query, 0) * (1.0 / math.sqrt(self.head_dim))
        k, v = self._heads(key, 1), self._heads(value, 2)
        scores = q @ k.transpose(-1, -2)  # [B, h, Lq, Lk]
        if bias is not None:
            scores = scores + bias
        out = (scores.softmax(-1) @ v).transpose(1, 2)  # [B, Lq, h, d]
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


class SelfAttentionLayer(nn.Module):
    """Pre-norm self-attention with a residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, query_pos: Tensor) -> Tensor:
        y = self.norm(x)
        q = y + query_pos
        return x + self.self_attn(q, q, y)


class CrossAttentionLayer(nn.Module):
    """Pre-norm (masked) cross-attention from the queries to one memory map, with a residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = MultiheadAttention(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor, bias: Tensor | None) -> Tensor:
        return x + self.multihead_attn(self.norm(x) + query_pos, memory + pos, memory, bias)


class FFNLayer(nn.Module):
    """Pre-norm two-layer ReLU MLP with a residual."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        for layer in (self.linear1, self.linear2):
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


class MLP(nn.Module):
    """Linear layers with ReLU between them."""

    def __init__(self, cin: int, hidden: int, cout: int, num_layers: int) -> None:
        super().__init__()
        dims = [cin] + [hidden] * (num_layers - 1) + [cout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class PredictionHeads(nn.Module):
    """Per query: class logits over C+1 (last = no object) and mask logits (embedding . mask features)."""

    def __init__(self, dim: int, num_classes: int, mask_dim: int) -> None:
        super().__init__()
        self.decoder_norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes + 1)
        self.mask_classifier = MLP(dim, dim, mask_dim, 3)

    def forward(self, queries: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor]:
        x = self.decoder_norm(queries)  # [B, Q, D]
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_classifier(x), mask_features)
        return self.classifier(x), masks


def sine_position(x: Tensor, num_feats: int, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised sine embedding of a [B, C, H, W] map's grid -> [1, H*W, 2*num_feats]."""
    ones = torch.ones_like(x[:1, 0], dtype=torch.float32)  # [1, H, W]
    y = ones.cumsum(1)
    xs = ones.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
    xs = xs / (xs[:, :, -1:] + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=x.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)

    def embed(coord: Tensor) -> Tensor:
        p = coord[..., None] / dim_t  # [1, H, W, F]
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=4).flatten(3)

    pos = torch.cat((embed(y), embed(xs)), dim=3)  # [1, H, W, 2F]
    return pos.flatten(1, 2).to(x.dtype)


def attention_bias(mask_logits: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Masked attention: a query attends only where its last mask is foreground (everywhere if nowhere)."""
    blocked = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False).flatten(2) < 0
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)  # [B, Q, HW]
    return (blocked.to(mask_logits.dtype) * MASKED).unsqueeze(1).detach()  # [B, 1, Q, HW], broadcast over heads


class TransformerDecoder(nn.Module):
    """Mask2Former decoder: queries alternate over the stride-32 and stride-16 maps, one per layer."""

    def __init__(self, in_channels: int, mask_dim: int, num_classes: int, hidden_dim: int, num_queries: int,
                 heads: int, dim_feedforward: int, dec_layers: int) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers = hidden_dim, dec_layers
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, heads) for _ in range(dec_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, heads) for _ in range(dec_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(dec_layers))
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.num_feature_levels = min(2, dec_layers)
        self.input_proj = nn.ModuleList(nn.Conv2d(in_channels, hidden_dim, 1) for _ in range(self.num_feature_levels))
        for proj in self.input_proj:
            nn.init.kaiming_uniform_(proj.weight, a=1)
            nn.init.zeros_(proj.bias)
        self.forward_prediction_heads = PredictionHeads(hidden_dim, num_classes, mask_dim)

    def forward(self, maps: list[Tensor], mask_features: Tensor) -> list[tuple[Tensor, Tensor]]:
        """maps: context at strides 32, 16(, 8); returns (logits, masks) before and after each layer."""
        sizes = [m.shape[-2:] for m in maps[: self.num_feature_levels]]
        src = [proj(m).flatten(2).transpose(1, 2) for proj, m in zip(self.input_proj, maps, strict=False)]
        pos = [sine_position(m, self.hidden_dim // 2) for m in maps[: self.num_feature_levels]]
        batch = mask_features.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        x = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        predictions = [self.forward_prediction_heads(x, mask_features)]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            bias = attention_bias(predictions[-1][1], sizes[level])
            x = self.transformer_cross_attention_layers[i](x, src[level], pos[level], query_pos, bias)
            x = self.transformer_self_attention_layers[i](x, query_pos)
            x = self.transformer_ffn_layers[i](x)
            predictions.append(self.forward_prediction_heads(x, mask_features))
        return predictions


class CriterionBuffers(nn.Module):
    """Holds the loss's class weights that Focoos keeps in the checkpoint (the loss lives in training/)."""

    def __init__(self, num_classes: int, eos_coef: float) -> None:
        super().__init__()
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)


class MaskFormerHead(nn.Module):
    """Only a container, so the keys read head.criterion.* and head.predictor.* as in Focoos."""

    def __init__(self, criterion: nn.Module, predictor: TransformerDecoder) -> None:
        super().__init__()
        self.criterion = criterion
        self.predictor = predictor


class BisenetFormer(nn.Module):
    """images [B,3,H,W] raw RGB 0..255 -> eval: masks [B,Q,ceil(H/8),ceil(W/8)] (sigmoid, at the mask
    stride: upsample to the input size as Focoos does) and logits [B,Q,C] (softmax without the
    no-object class, or sigmoid with cls_sigmoid); training: raw pred_logits/pred_masks + aux_outputs."""

    output_names = ("masks", "logits")
    output_axes = {"masks": {2: "mask_height", 3: "mask_width"}}

    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__()
        cfg = {**DEFAULTS, **config}
        self.num_classes = num_classes
        self.cls_sigmoid = bool(cfg["cls_sigmoid"])
        feat_dim, out_dim = int(cfg["pixel_decoder_feat_dim"]), int(cfg["pixel_decoder_out_dim"])
        self.pixel_decoder = BiseNet(cfg["backbone_config"], feat_dim, out_dim)
        predictor = TransformerDecoder(
            in_channels=out_dim,
            mask_dim=int(cfg["transformer_predictor_out_dim"]),
            num_classes=num_classes,
            hidden_dim=int(cfg["transformer_predictor_hidden_dim"]),
            num_queries=int(cfg["num_queries"]),
            heads=NUM_HEADS,
            dim_feedforward=int(cfg["transformer_predictor_dim_feedforward"]),
            dec_layers=int(cfg["transformer_predictor_dec_layers"]),
        )
        self.head = MaskFormerHead(CriterionBuffers(num_classes, float(cfg["criterion_eos_coef"])), predictor)
        self.register_buffer("pixel_mean", torch.tensor(cfg["pixel_mean"], dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg["pixel_std"], dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict[str, Any]:
        x = (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        mask_features, maps = self.pixel_decoder(x)
        predictions = self.head.predictor(maps, mask_features)
        *aux, (logits, masks) = predictions
        if self.training:
            return {
                "pred_logits": logits,
                "pred_masks": masks,
                "aux_outputs": [{"pred_logits": lg, "pred_masks": mk} for lg, mk in aux],
            }
        probs = logits.sigmoid()[..., :-1] if self.cls_sigmoid else logits.softmax(-1)[..., :-1]
        return masks.sigmoid(), probs


def build_model(config: dict, num_classes: int) -> BisenetFormer:
    """BiSeNetFormer from Focoos' config dict (postprocessing and loss keys are not the network's)."""
    return BisenetFormer(config, num_classes)
