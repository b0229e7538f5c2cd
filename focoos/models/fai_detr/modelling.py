"""FAI-DETR in Focoos' state-dict layout: Focoos' checkpoints load strictly and give Focoos' numbers.

pixel_decoder: backbone (res3..res5) -> 1x1 projections -> optional transformer encoder on the coarsest map
-> top-down FPN + bottom-up PAN (bilinear resizes, CSP-RepVGG blocks). head.predictor: projections,
encoder-token query selection around grid anchors, deformable decoder with iterative box refinement.

Everything that depends on the input size (positional embeddings, anchors, valid mask, level splits) is
computed in the graph from tensor shapes, so one exported graph serves any batch and size. Deformable
attention samples with grid_sample, so ONNX Runtime and TensorRT run it without custom ops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone
from focoos.models.fai_detr.config import DETRConfig
from focoos.models.layers import MLP, Conv2d, ConvNormLayer, Head, normalize, register_pixel_stats

# DETRConfig's defaults in JSON form, for readers of the plain config dict (training losses, ModelManager).
DEFAULTS: dict[str, Any] = DETRConfig.defaults()
IN_FEATURES = ("res3", "res4", "res5")
ANCHOR_EPS = 1e-2  # anchors with a coordinate outside (eps, 1 - eps) are invalid
ANCHOR_SIZE = 0.05  # anchor side at the finest level, doubled per coarser level


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.log(x.clamp(min=eps) / (1.0 - x).clamp(min=eps))


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """x [B, N, K], index [B, Q] -> [B, Q, K]."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class RepVGGBlock(nn.Module):
    """3x3 conv-BN plus 1x1 conv-BN, summed, SiLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvNormLayer(channels, channels, 3)
        self.conv2 = ConvNormLayer(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(self.conv1(x) + self.conv2(x))


class CSPRepLayer(nn.Module):
    """Two 1x1 branches, one through RepVGG blocks, summed (then a 1x1 if the width changes)."""

    def __init__(self, cin: int, cout: int, num_blocks: int, expansion: float) -> None:
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvNormLayer(cin, hidden, 1, act="silu")
        self.conv2 = ConvNormLayer(cin, hidden, 1, act="silu")
        self.bottlenecks = nn.Sequential(*(RepVGGBlock(hidden) for _ in range(num_blocks)))
        self.conv3 = ConvNormLayer(hidden, cout, 1, act="silu") if hidden != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


def sine_pos_embed(h: int | Tensor, w: int | Tensor, dim: int, ref: Tensor, temperature: float = 10000.0) -> Tensor:
    """Unnormalised 2D sine embedding [1, h*w, dim]: (y sin, y cos, x sin, x cos), row-major tokens."""
    npf = dim // 2
    ys = torch.arange(h, device=ref.device).to(torch.float32)
    xs = torch.arange(w, device=ref.device).to(torch.float32)
    steps = torch.arange(npf, device=ref.device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / npf)  # [npf]
    pos_x = (xs[None, :, None] / dim_t).expand(ys.shape[0], -1, -1)  # [h, w, npf]
    pos_y = (ys[:, None, None] / dim_t).expand(-1, xs.shape[0], -1)
    parts = [pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos(), pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()]
    pos = torch.cat(parts, -1)  # [h, w, dim]
    return pos.reshape(1, -1, dim).to(ref.dtype)


class TransformerEncoderLayer(nn.Module):
    """Post-norm self-attention + GELU FFN; the position is added to queries and keys only."""

    def __init__(self, dim: int, nhead: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, nhead, dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor) -> Tensor:
        q = src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(q, q, src, need_weights=False)[0]))
        ffn = self.linear2(self.dropout(F.gelu(self.linear1(src))))
        return self.norm2(src + self.dropout2(ffn))


class TransformerEncoder(nn.Module):
    def __init__(self, dim: int, nhead: int, ffn: int, dropout: float, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(dim, nhead, ffn, dropout) for _ in range(num_layers))

    def forward(self, src: Tensor, pos: Tensor) -> Tensor:
        for layer in self.layers:
            src = layer(src, pos)
        return src


class Encoder(nn.Module):
    """`pixel_decoder`: backbone + hybrid encoder; returns the fused maps coarsest first (strides 32, 16, 8)."""

    def __init__(self, backbone: nn.Module, cfg: DETRConfig) -> None:
        super().__init__()
        shapes = backbone.output_shape()
        in_channels = [int(shapes[name][0]) for name in IN_FEATURES]
        feat_dim, out_dim = cfg.pixel_decoder_feat_dim, cfg.pixel_decoder_out_dim
        depth = round(3 * 1.0)  # Focoos' depth_mult is fixed at 1
        expansion = cfg.pixel_decoder_expansion
        self.feat_dim = feat_dim
        self.encoder_idx = [len(in_channels) - 1]  # attention only on the coarsest map
        self.num_encoder_layers = cfg.pixel_decoder_num_encoder_layers

        self.backbone = backbone
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, feat_dim, 1, bias=False), nn.BatchNorm2d(feat_dim)) for c in in_channels
        )
        self.encoder = nn.ModuleList(
            TransformerEncoder(
                feat_dim, cfg.pixel_decoder_nhead, cfg.pixel_decoder_dim_feedforward, cfg.pixel_decoder_dropout,
                self.num_encoder_layers,
            )
            for _ in self.encoder_idx
        )  # fmt: skip
        levels = len(in_channels) - 1
        self.lateral_convs = nn.ModuleList(ConvNormLayer(feat_dim, feat_dim, 1, act="silu") for _ in range(levels))
        self.fpn_blocks = nn.ModuleList(CSPRepLayer(2 * feat_dim, feat_dim, depth, expansion) for _ in range(levels))
        self.downsample_convs = nn.ModuleList(ConvNormLayer(feat_dim, feat_dim, 3, act="silu") for _ in range(levels))
        self.pan_blocks = nn.ModuleList(CSPRepLayer(2 * feat_dim, feat_dim, depth, expansion) for _ in range(levels))
        # kept for checkpoint compatibility: Focoos computes it and discards it in detection
        self.mask_features = Conv2d(feat_dim, out_dim, 3, padding=1)

    def forward(self, images: Tensor) -> list[Tensor]:
        features = self.backbone(images)
        proj = [p(features[name]) for p, name in zip(self.input_proj, IN_FEATURES, strict=True)]
        if self.num_encoder_layers > 0:
            for encoder, idx in zip(self.encoder, self.encoder_idx, strict=True):
                x = proj[idx]  # [B, C, h, w]
                h, w = x.shape[2], x.shape[3]
                tokens = encoder(x.flatten(2).permute(0, 2, 1), sine_pos_embed(h, w, self.feat_dim, x))
                proj[idx] = tokens.permute(0, 2, 1).reshape(-1, self.feat_dim, h, w)

        n = len(proj)
        inner = [proj[-1]]  # top-down, coarse to fine
        for i, low in enumerate(reversed(proj[:-1])):
            high = self.lateral_convs[i](inner[0])
            inner[0] = high
            up = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
            inner.insert(0, self.fpn_blocks[i](torch.cat([up, low], dim=1)))
        outs = [inner[0]]  # bottom-up, fine to coarse
        for i in range(n - 1):
            high = inner[i + 1]
            down = F.interpolate(outs[-1], size=high.shape[-2:], mode="bilinear", align_corners=False)
            outs.append(self.pan_blocks[i](torch.cat([self.downsample_convs[i](down), high], dim=1)))
        return outs[::-1]  # [B, C, h_l, w_l] for strides 32, 16, 8


class MSDeformableAttention(nn.Module):
    """Each query reads `points` bilinear samples per head and level around its reference box."""

    def __init__(self, dim: int, heads: int, levels: int, points: int) -> None:
        super().__init__()
        self.heads, self.levels, self.points, self.head_dim = heads, levels, points, dim // heads
        total = heads * levels * points
        self.sampling_offsets = nn.Linear(dim, total * 2)
        self.attention_weights = nn.Linear(dim, total)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        # Deformable-DETR start: head k looks along direction k, farther for later points, uniform weights
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(heads, dtype=torch.float32) * (2.0 * math.pi / heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True).values).view(heads, 1, 1, 2).repeat(1, levels, points, 1)
        grid = grid * torch.arange(1, points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: Tensor, ref: Tensor, value: Tensor, shapes: list) -> Tensor:
        """query [B, Q, D]; ref [B, Q, 4] cxcywh 0..1; value [B, N, D]; shapes [(h_l, w_l)] in memory order."""
        heads, levels, points, hd = self.heads, self.levels, self.points, self.head_dim
        batch, num_q = query.shape[0], query.shape[1]
        value = self.value_proj(value)  # [B, N, D]
        offsets = self.sampling_offsets(query).reshape(batch, num_q, heads, levels, points, 2)
        weights = self.attention_weights(query).reshape(batch, num_q, heads, levels * points).softmax(-1)
        ref = ref[:, :, None, None, None, :]
        locations = ref[..., :2] + offsets / points * ref[..., 2:] * 0.5  # [B, Q, H, L, P, 2]
        grids = 2 * locations - 1
        sampled, start = [], 0
        for lvl, (h, w) in enumerate(shapes):
            end = start + h * w
            v = value[:, start:end].transpose(1, 2).reshape(-1, hd, h, w)  # [B*H, hd, h, w]
            grid = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # [B*H, Q, P, 2]
            sampled.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
            start = end
        stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B*H, hd, Q, L*P]
        weights = weights.transpose(1, 2).reshape(-1, 1, num_q, levels * points)  # [B*H, 1, Q, L*P]
        out = (stacked * weights).sum(-1).reshape(batch, heads * hd, num_q).transpose(1, 2)  # [B, Q, D]
        return self.output_proj(out)


class TransformerDecoderLayer(nn.Module):
    """Post-norm: query self-attention, deformable cross-attention, ReLU FFN."""

    def __init__(self, dim: int, nhead: int, ffn: int, levels: int, points: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, nhead, dropout=0.0, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = MSDeformableAttention(dim, nhead, levels, points)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, tgt: Tensor, ref: Tensor, memory: Tensor, shapes: list, pos: Tensor) -> Tensor:
        q = tgt + pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])
        tgt = self.norm2(tgt + self.cross_attn(tgt + pos, ref, memory, shapes))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class TransformerDecoder(nn.Module):
    """Holds the layers (`decoder.layers.*`); the refinement loop lives in TransformerPredictor, beside the heads."""

    def __init__(self, dim: int, nhead: int, ffn: int, num_layers: int, levels: int, points: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, nhead, ffn, levels, points) for _ in range(num_layers)
        )


def make_anchors(shapes: list, ref: Tensor) -> tuple[Tensor, Tensor]:
    """Grid-centre anchors in logit space [1, N, 4] (0 where invalid) and the valid mask [1, N, 1].

    Levels come coarsest first, so level l has side ANCHOR_SIZE * 2 ** (L - 1 - l).
    """
    anchors = []
    for lvl, (h, w) in enumerate(shapes):
        ys = (torch.arange(h, device=ref.device).to(torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=ref.device).to(torch.float32) + 0.5) / w
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [h, w]
        wh = torch.full_like(gx, ANCHOR_SIZE * 2.0 ** (len(shapes) - 1 - lvl))
        anchors.append(torch.stack([gx, gy, wh, wh], -1).reshape(-1, 4))
    anchors = torch.cat(anchors)[None]  # [1, N, 4]
    valid = ((anchors > ANCHOR_EPS) & (anchors < 1 - ANCHOR_EPS)).all(-1, keepdim=True)
    logits = torch.log(anchors / (1 - anchors))
    return torch.where(valid, logits, torch.zeros_like(logits)).to(ref.dtype), valid


class TransformerPredictor(nn.Module):
    """`head.predictor`: query selection over encoder tokens, then the refining deformable decoder."""

    def __init__(self, in_channels: int, num_classes: int, cfg: DETRConfig, levels: int = 3) -> None:
        super().__init__()
        dim = cfg.transformer_predictor_hidden_dim
        nhead, dec_layers = cfg.transformer_predictor_nhead, cfg.transformer_predictor_dec_layers
        self.num_queries = cfg.num_queries
        self.input_proj = nn.ModuleList(ConvNormLayer(in_channels, dim, 1) for _ in range(levels))
        self.decoder = TransformerDecoder(
            dim, nhead, cfg.transformer_predictor_dim_feedforward, dec_layers, levels, points=4
        )
        self.query_pos_head = MLP(4, 2 * dim, dim, 2)
        self.enc_output = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.enc_score_classifier = nn.Linear(dim, num_classes)
        self.enc_bbox_classifier = MLP(dim, dim, 4, 3)
        self.dec_score_classifier = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(dec_layers))
        self.dec_bbox_classifier = nn.ModuleList(MLP(dim, dim, 4, 3) for _ in range(dec_layers))

        prior = 1.0 / (num_classes + 1)  # Focoos' start: every class score at p = 1 / (C + 1)
        for cls in [self.enc_score_classifier, *self.dec_score_classifier]:
            nn.init.constant_(cls.bias, -math.log((1 - prior) / prior))
        for reg in [self.enc_bbox_classifier, *self.dec_bbox_classifier]:  # boxes start at anchors/references
            nn.init.zeros_(reg.layers[-1].weight)
            nn.init.zeros_(reg.layers[-1].bias)
        nn.init.xavier_uniform_(self.enc_output[0].weight)
        for layer in self.query_pos_head.layers:
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, feats: list[Tensor]) -> dict[str, Any]:
        proj = [p(f) for p, f in zip(self.input_proj, feats, strict=True)]
        shapes = [(x.shape[2], x.shape[3]) for x in proj]  # traced sizes while exporting
        memory = torch.cat([x.flatten(2).permute(0, 2, 1) for x in proj], dim=1)  # [B, N, D]
        anchors, valid = make_anchors(shapes, memory)

        out_memory = self.enc_output(valid.to(memory.dtype) * memory)  # [B, N, D]
        enc_logits = self.enc_score_classifier(out_memory)  # [B, N, C]
        enc_coords = self.enc_bbox_classifier(out_memory) + anchors  # [B, N, 4] logit space
        topk = torch.topk(enc_logits.max(-1).values, self.num_queries, dim=1).indices  # [B, Q]
        ref_unact = gather_tokens(enc_coords, topk)
        target = gather_tokens(out_memory, topk).detach()

        ref_detach = ref_unact.detach().sigmoid()  # [B, Q, 4] cxcywh
        ref = ref_detach
        logits, boxes = [], []
        last = len(self.decoder.layers) - 1
        for i, layer in enumerate(self.decoder.layers):
            target = layer(target, ref_detach, memory, shapes, self.query_pos_head(ref_detach))
            delta = self.dec_bbox_classifier[i](target)
            new_ref = (delta + inverse_sigmoid(ref_detach)).sigmoid()
            if self.training:  # later layers also see the un-detached chain (RT-DETR)
                logits.append(self.dec_score_classifier[i](target))
                boxes.append(new_ref if i == 0 else (delta + inverse_sigmoid(ref)).sigmoid())
            elif i == last:
                return {"pred_logits": self.dec_score_classifier[i](target), "pred_boxes": new_ref}
            ref = new_ref
            ref_detach = new_ref.detach() if self.training else new_ref
        aux = [{"pred_logits": lg, "pred_boxes": bx} for lg, bx in zip(logits[:-1], boxes[:-1], strict=True)]
        return {
            "pred_logits": logits[-1],  # [B, Q, C] pre-sigmoid
            "pred_boxes": boxes[-1],  # [B, Q, 4] cxcywh 0..1
            "aux_outputs": aux,
            "enc_outputs": {"pred_logits": gather_tokens(enc_logits, topk), "pred_boxes": ref_unact.sigmoid()},
        }


class FAIDetr(nn.Module):
    """Takes raw 0..255 RGB [B,3,H,W] (uint8 or float); normalisation is in the graph so servers stay dumb.

    Eval returns (boxes [B,Q,4] xyxy in 0..1 of the input, logits [B,Q,C] already sigmoided), Focoos' order.
    Training returns the dict DetrCriterion consumes: "pred_logits" (pre-sigmoid) and "pred_boxes" (cxcywh)
    of the last layer, "aux_outputs" of the earlier layers and "enc_outputs" of the selected proposals.
    """


    def __init__(self, config: DETRConfig | Mapping[str, Any], num_classes: int | None = None) -> None:
        super().__init__()
        cfg = DETRConfig.parse(config, num_classes)
        num_classes = cfg.num_classes  # None: the config's, as Focoos builds it
        self.num_classes = num_classes
        self.pixel_decoder = Encoder(build_backbone(cfg.backbone_config), cfg)
        predictor = TransformerPredictor(cfg.pixel_decoder_out_dim, num_classes, cfg)
        self.head = Head(predictor, num_classes, cfg.criterion_eos_coef)
        register_pixel_stats(self, cfg.pixel_mean, cfg.pixel_std)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict[str, Any]:
        out = self.head(self.pixel_decoder(normalize(images, self.pixel_mean, self.pixel_std)))
        if self.training:
            return out
        return box_cxcywh_to_xyxy(out["pred_boxes"]), out["pred_logits"].sigmoid()


def build_model(config: DETRConfig | Mapping[str, Any], num_classes: int) -> FAIDetr:
    """FAI-DETR from its typed config or Focoos' JSON form of it (absent keys take Focoos' defaults; an unknown
    key, a missing field or a wrong type raises ModelConfigError). `num_classes` wins over the config's."""
    return FAIDetr(config, num_classes)
