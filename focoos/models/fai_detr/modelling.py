"""FAI-DETR: a real-time detection transformer in the RT-DETR style.

backbone (STDC or timm, strides 8/16/32) -> hybrid encoder (AIFI on stride 32 + CCFM FPN/PAN)
-> top-k query selection from the encoder tokens -> deformable decoder with iterative box refinement.

Everything that depends on the input resolution (positional embeddings, anchors, per-level splits) is
computed inside the graph from tensor shapes, so one traced/exported graph serves any batch and size.
Only standard ops are used (grid_sample for deformable attention), so ONNX Runtime and TensorRT run it.
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

_EPS_ANCHOR = 0.01  # anchors with a coordinate outside (eps, 1 - eps) are invalid
_INVALID = 1e4  # finite stand-in for "infinite" logits: stays finite in fp16 and in TensorRT
Shapes = list[tuple[int, int]]  # per-level (h, w); while tracing these are recorded size tensors


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.log(x.clamp(min=eps) / (1.0 - x).clamp(min=eps))


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """x [B, N, K], index [B, Q] -> [B, Q, K] (GatherElements, no loop over the batch)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + activation: the only conv unit in the network."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = None,
    ) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            act() if act is not None else nn.Identity(),
        )


class MLP(nn.Module):
    """Linear layers with ReLU in between (none after the last)."""

    def __init__(self, cin: int, hidden: int, cout: int, num_layers: int) -> None:
        super().__init__()
        dims = [cin] + [hidden] * (num_layers - 1) + [cout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


# ----------------------------------------------------------------------------------------------- backbone
class CatBottleneck(nn.Module):
    """STDC module: 4 convs on progressively halved channels, all outputs concatenated (out channels)."""

    def __init__(self, cin: int, cout: int, stride: int, num_blocks: int = 4) -> None:
        super().__init__()
        self.stride = stride
        chans = (
            [cout // 2]
            + [cout // 2 ** (i + 2) for i in range(num_blocks - 2)]
            + [cout // 2 ** (num_blocks - 1)]
        )
        self.convs = nn.ModuleList([ConvBNAct(cin, chans[0], 1, act=nn.ReLU)])
        self.convs.extend(ConvBNAct(a, b, 3, act=nn.ReLU) for a, b in zip(chans[:-1], chans[1:], strict=True))
        if stride == 2:  # downsample the first branch depthwise before the 3x3 chain, pool it for the concat
            self.avd = ConvBNAct(chans[0], chans[0], 3, 2, groups=chans[0])
            self.skip = nn.AvgPool2d(3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        first = self.convs[0](x)  # [B, cout/2, H, W]
        out = self.avd(first) if self.stride == 2 else first
        outs = []
        for conv in self.convs[1:]:
            out = conv(out)
            outs.append(out)
        first = self.skip(first) if self.stride == 2 else first
        return torch.cat([first, *outs], dim=1)  # [B, cout, H/s, W/s]


class STDCNet(nn.Module):
    """STDC1/STDC2 (STDCNet813/1446): cheap multi-scale backbone; returns strides 8, 16, 32 (and 4 on request)."""

    def __init__(self, layers: tuple[int, int, int], base: int = 64, with_stride4: bool = False) -> None:
        super().__init__()
        self.with_stride4 = with_stride4
        self.stem = nn.Sequential(
            ConvBNAct(3, base // 2, 3, 2, act=nn.ReLU), ConvBNAct(base // 2, base, 3, 2, act=nn.ReLU)
        )
        self.channels = [base * 4, base * 8, base * 16]
        cin, stages = base, []
        for cout, n in zip(self.channels, layers, strict=True):
            stages.append(
                nn.Sequential(
                    *(CatBottleneck(cin if i == 0 else cout, cout, 2 if i == 0 else 1) for i in range(n))
                )
            )
            cin = cout
        self.stages = nn.ModuleList(stages)
        if with_stride4:
            self.channels = [base, *self.channels]

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)  # [B, 64, H/4, W/4]
        feats = [x] if self.with_stride4 else []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats  # [B,256,H/8,W/8], [B,512,H/16,W/16], [B,1024,H/32,W/32]


class TimmBackbone(nn.Module):
    """Any timm model with features_only, taking the stride 8/16/32 maps (and 4 on request)."""

    def __init__(self, name: str, with_stride4: bool = False) -> None:
        super().__init__()
        indices = (1, 2, 3, 4) if with_stride4 else (2, 3, 4)
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=indices)
        self.channels = list(self.body.feature_info.channels())

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.body(x))


def build_backbone(name: str, with_stride4: bool = False) -> nn.Module:
    """STDC1/2 or a timm model; `.channels` lists the channels of the returned maps, finest first."""
    if name == "stdc1":
        return STDCNet((2, 2, 2), with_stride4=with_stride4)
    if name == "stdc2":
        return STDCNet((4, 5, 3), with_stride4=with_stride4)
    return TimmBackbone(name, with_stride4=with_stride4)


# ----------------------------------------------------------------------------------------------- encoder
def sincos_pos_embed(
    h: int | Tensor, w: int | Tensor, dim: int, ref: Tensor, temperature: float = 10000.0
) -> Tensor:
    """2D sin-cos embedding [1, h*w, dim] in row-major token order; h, w may be traced sizes."""
    ys = torch.arange(h, device=ref.device).to(ref.dtype)
    xs = torch.arange(w, device=ref.device).to(ref.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [h, w]
    omega = 1.0 / temperature ** (torch.arange(dim // 4, device=ref.device, dtype=ref.dtype) / (dim // 4))
    out_x = gx.reshape(-1, 1) * omega[None]  # [h*w, dim/4]
    out_y = gy.reshape(-1, 1) * omega[None]
    return torch.cat([out_x.sin(), out_x.cos(), out_y.sin(), out_y.cos()], dim=1)[None]  # [1, h*w, dim]


class EncoderLayer(nn.Module):
    """AIFI: post-norm transformer layer; position is added to queries/keys only."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        q = x + pos
        x = self.norm1(x + self.drop(self.attn(q, q, x, need_weights=False)[0]))
        return self.norm2(x + self.drop(self.ffn(x)))


class CSPBlock(nn.Module):
    """RepC3-like fusion: two 1x1 branches, one through n plain 3x3 conv-BN-SiLU, summed."""

    def __init__(self, cin: int, cout: int, n: int, expansion: float) -> None:
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvBNAct(cin, hidden, 1, act=nn.SiLU)
        self.conv2 = ConvBNAct(cin, hidden, 1, act=nn.SiLU)
        self.blocks = nn.Sequential(*(ConvBNAct(hidden, hidden, 3, act=nn.SiLU) for _ in range(n)))
        self.conv3 = ConvBNAct(hidden, cout, 1, act=nn.SiLU) if hidden != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.blocks(self.conv1(x)) + self.conv2(x))


class HybridEncoder(nn.Module):
    """Attention only where it is cheap (stride 32), then CNN cross-scale fusion (top-down + bottom-up)."""

    def __init__(
        self,
        in_channels: list[int],
        dim: int,
        heads: int,
        ffn: int,
        dropout: float,
        num_layers: int,
        expansion: float,
        depth_mult: float,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_proj = nn.ModuleList(ConvBNAct(c, dim, 1) for c in in_channels)
        self.aifi = nn.ModuleList(EncoderLayer(dim, heads, ffn, dropout) for _ in range(num_layers))
        n = max(round(3 * depth_mult), 1)
        self.lateral = nn.ModuleList(ConvBNAct(dim, dim, 1, act=nn.SiLU) for _ in range(2))
        self.fpn = nn.ModuleList(CSPBlock(2 * dim, dim, n, expansion) for _ in range(2))
        self.down = nn.ModuleList(ConvBNAct(dim, dim, 3, 2, act=nn.SiLU) for _ in range(2))
        self.pan = nn.ModuleList(CSPBlock(2 * dim, dim, n, expansion) for _ in range(2))

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        p3, p4, p5 = (proj(f) for proj, f in zip(self.input_proj, feats, strict=True))  # [B, D, h_l, w_l]
        if len(self.aifi) > 0:
            h, w = p5.shape[2], p5.shape[3]
            tokens = p5.flatten(2).transpose(1, 2)  # [B, h*w, D]
            pos = sincos_pos_embed(h, w, self.dim, tokens)  # [1, h*w, D]
            for layer in self.aifi:
                tokens = layer(tokens, pos)
            p5 = tokens.transpose(1, 2).reshape_as(p5)  # [B, D, h, w]
        # top-down: upsample to the exact lower size so inputs that are not multiples of 32 work too
        lat5 = self.lateral[0](p5)
        f4 = self.fpn[0](torch.cat([F.interpolate(lat5, size=p4.shape[-2:], mode="nearest"), p4], dim=1))
        lat4 = self.lateral[1](f4)
        out3 = self.fpn[1](torch.cat([F.interpolate(lat4, size=p3.shape[-2:], mode="nearest"), p3], dim=1))
        # bottom-up
        out4 = self.pan[0](torch.cat([self.down[0](out3), lat4], dim=1))
        out5 = self.pan[1](torch.cat([self.down[1](out4), lat5], dim=1))
        return [out3, out4, out5]  # strides 8, 16, 32, all [B, D, h_l, w_l]


# ----------------------------------------------------------------------------------------------- decoder
class MSDeformableAttention(nn.Module):
    """Multi-scale deformable attention with grid_sample: each query reads a few points per head and level."""

    def __init__(self, dim: int, heads: int, levels: int, points: int) -> None:
        super().__init__()
        self.heads, self.levels, self.points, self.head_dim = heads, levels, points, dim // heads
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        # Deformable DETR init: each head starts looking in its own direction, farther for later points
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(heads, dtype=torch.float32) * (2.0 * math.pi / heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (
            (grid / grid.abs().max(-1, keepdim=True).values).view(heads, 1, 1, 2).repeat(1, levels, points, 1)
        )
        grid = grid * torch.arange(1, points + 1, dtype=torch.float32).view(1, 1, points, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)  # uniform attention over the sampled points
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: Tensor, ref: Tensor, memory: Tensor, shapes: Shapes) -> Tensor:
        """query [B, Q, D], ref [B, Q, 4] cxcywh in 0..1, memory [B, N, D], shapes [(h_l, w_l)] per level."""
        hh, ll, pp, hd = self.heads, self.levels, self.points, self.head_dim
        value = self.value_proj(memory)  # [B, N, D]
        offsets = self.sampling_offsets(query).unflatten(-1, (hh, ll, pp, 2))  # [B, Q, H, L, P, 2]
        weights = self.attention_weights(query).unflatten(-1, (hh, ll * pp)).softmax(-1)  # [B, Q, H, L*P]
        ref = ref[:, :, None, None, None, :]  # [B, Q, 1, 1, 1, 4]
        locs = ref[..., :2] + offsets / pp * ref[..., 2:] * 0.5  # [B, Q, H, L, P, 2] in 0..1
        grids = (2.0 * locs - 1.0).transpose(1, 2).flatten(0, 1)  # [B*H, Q, L, P, 2] in -1..1
        sampled, start = [], 0
        for lvl, (h, w) in enumerate(shapes):
            end = start + h * w
            v = value[:, start:end].transpose(1, 2).reshape(-1, hd, h, w)  # [B*H, hd, h, w]
            sampled.append(
                F.grid_sample(v, grids[:, :, lvl], mode="bilinear", padding_mode="zeros", align_corners=False)
            )  # [B*H, hd, Q, P]
            start = end
        sampled = torch.stack(sampled, dim=-2).flatten(-2)  # [B*H, hd, Q, L*P]
        weights = weights.transpose(1, 2).flatten(0, 1).unsqueeze(1)  # [B*H, 1, Q, L*P]
        out = (sampled * weights).sum(-1)  # [B*H, hd, Q]
        out = out.unflatten(0, (-1, hh)).flatten(1, 2).transpose(1, 2)  # [B, Q, D]
        return self.output_proj(out)


class DecoderLayer(nn.Module):
    """Post-norm: self-attention among queries, deformable cross-attention to the memory, FFN."""

    def __init__(self, dim: int, heads: int, levels: int, points: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = MSDeformableAttention(dim, heads, levels, points)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, pos: Tensor, ref: Tensor, memory: Tensor, shapes: Shapes) -> Tensor:
        q = tgt + pos
        tgt = self.norm1(tgt + self.drop(self.self_attn(q, q, tgt, need_weights=False)[0]))
        tgt = self.norm2(tgt + self.drop(self.cross_attn(tgt + pos, ref, memory, shapes)))
        return self.norm3(tgt + self.drop(self.ffn(tgt)))  # [B, Q, D]


def make_anchors(shapes: Shapes, ref: Tensor) -> tuple[Tensor, Tensor]:
    """Grid-centre anchors per level (wh = 0.05 * 2**lvl): logits [1, N, 4] and valid mask [1, N, 1]."""
    anchors = []
    for lvl, (h, w) in enumerate(shapes):
        ys = (torch.arange(h, device=ref.device).to(ref.dtype) + 0.5) / h
        xs = (torch.arange(w, device=ref.device).to(ref.dtype) + 0.5) / w
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [h, w]
        wh = torch.full_like(gx, 0.05 * 2.0**lvl)
        anchors.append(torch.stack([gx, gy, wh, wh], dim=-1).reshape(-1, 4))  # [h*w, 4]
    anchors = torch.cat(anchors)[None]  # [1, N, 4]
    valid = ((anchors > _EPS_ANCHOR) & (anchors < 1.0 - _EPS_ANCHOR)).all(-1, keepdim=True)  # [1, N, 1]
    logits = torch.log(anchors / (1.0 - anchors))
    return torch.where(valid, logits, torch.full_like(logits, _INVALID)), valid


class Decoder(nn.Module):
    """Query selection from encoder tokens + deformable decoder with iterative box refinement."""

    def __init__(
        self,
        dim: int,
        num_classes: int,
        num_queries: int,
        heads: int,
        levels: int,
        points: int,
        ffn: int,
        num_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.enc_output = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.enc_score_head = nn.Linear(dim, num_classes)
        self.enc_bbox_head = MLP(dim, dim, 4, 3)
        self.query_pos_head = MLP(4, 2 * dim, dim, 2)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, heads, levels, points, ffn, dropout) for _ in range(num_layers)
        )
        self.score_heads = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(num_layers))
        self.bbox_heads = nn.ModuleList(MLP(dim, dim, 4, 3) for _ in range(num_layers))
        prior_bias = -math.log((1 - 0.01) / 0.01)  # rare positives: start every score at p = 0.01
        for head in [self.enc_score_head, *self.score_heads]:
            nn.init.constant_(head.bias, prior_bias)
        for mlp in [self.enc_bbox_head, *self.bbox_heads]:  # boxes start as the anchors / references
            nn.init.zeros_(mlp.layers[-1].weight)
            nn.init.zeros_(mlp.layers[-1].bias)

    def forward(self, feats: list[Tensor]) -> dict:
        shapes = [(f.shape[2], f.shape[3]) for f in feats]  # traced sizes, not constants
        memory = torch.cat([f.flatten(2).transpose(1, 2) for f in feats], dim=1)  # [B, N, D]
        anchors, valid = make_anchors(shapes, memory)  # [1, N, 4], [1, N, 1]

        # query selection: the num_queries most confident tokens seed content queries and reference boxes;
        # invalid (border) anchors are kept out of the top-k so they never become queries
        out_memory = self.enc_output(memory * valid.to(memory.dtype))  # [B, N, D]
        enc_logits = self.enc_score_head(out_memory)  # [B, N, C]
        enc_boxes = self.enc_bbox_head(out_memory) + anchors  # [B, N, 4] logit space
        token_score = torch.where(
            valid[..., 0], enc_logits.max(-1).values, torch.full_like(enc_logits[..., 0], -_INVALID)
        )
        topk = torch.topk(token_score, self.num_queries, dim=1).indices  # [B, Q]
        tgt = gather_tokens(out_memory, topk).detach()  # [B, Q, D]
        topk_boxes = gather_tokens(enc_boxes, topk)  # [B, Q, 4] logit space
        ref = topk_boxes.sigmoid().detach()  # [B, Q, 4] cxcywh

        # decoder with iterative refinement: each layer predicts a delta on the detached previous boxes
        logits, boxes, ref_grad = [], [], ref
        for i, layer in enumerate(self.layers):
            tgt = layer(tgt, self.query_pos_head(ref), ref, memory, shapes)  # [B, Q, D]
            delta = self.bbox_heads[i](tgt)  # [B, Q, 4]
            new_ref = (delta + inverse_sigmoid(ref)).sigmoid()  # [B, Q, 4]
            if self.training:  # the loss also sees the un-detached chain (RT-DETR)
                boxes.append(new_ref if i == 0 else (delta + inverse_sigmoid(ref_grad)).sigmoid())
                logits.append(self.score_heads[i](tgt))
            ref_grad, ref = new_ref, (new_ref.detach() if self.training else new_ref)
        if not self.training:
            return {"pred_logits": self.score_heads[-1](tgt), "pred_boxes": ref}
        return {
            "pred_logits": logits[-1],  # [B, Q, C] pre-sigmoid
            "pred_boxes": boxes[-1],  # [B, Q, 4] cxcywh 0..1
            "aux_outputs": [
                {"pred_logits": lg, "pred_boxes": bx} for lg, bx in zip(logits[:-1], boxes[:-1], strict=True)
            ],
            "enc_outputs": {
                "pred_logits": gather_tokens(enc_logits, topk),
                "pred_boxes": topk_boxes.sigmoid(),
            },
        }


# ----------------------------------------------------------------------------------------------- model
class FaiDetr(nn.Module):
    """Detector that takes raw 0..255 RGB images; normalisation lives in the graph so servers stay dumb."""

    output_names = ("boxes", "logits")

    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__()
        get = config.get
        dim, heads, levels = int(get("hidden_dim", 256)), int(get("num_heads", 8)), 3
        ffn, dropout = int(get("dim_feedforward", 1024)), float(get("dropout", 0.0))
        self.num_classes = num_classes
        self.backbone = build_backbone(get("backbone", "stdc2"))
        self.encoder = HybridEncoder(
            self.backbone.channels, dim, heads, ffn, dropout, num_layers=int(get("num_encoder_layers", 1)),
            expansion=float(get("expansion", 1.0)), depth_mult=float(get("depth_mult", 1.0)),
        )  # fmt: skip
        self.decoder = Decoder(
            dim, num_classes, int(get("num_queries", 300)), heads, levels, int(get("num_points", 4)), ffn,
            num_layers=int(get("num_decoder_layers", 3)), dropout=dropout,
        )  # fmt: skip
        mean = torch.tensor(get("pixel_mean", [123.675, 116.28, 103.53]), dtype=torch.float32)
        std = torch.tensor(get("pixel_std", [58.395, 57.12, 57.375]), dtype=torch.float32)
        # not persistent: the config is the source of truth, checkpoints stay free of preprocessing
        self.register_buffer("pixel_mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", std.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict:
        """images: [B,3,H,W] RGB, uint8 or float in 0..255 (NOT normalized).

        Eval: returns boxes [B,Q,4] xyxy normalised to 0..1 of the input size, and logits [B,Q,C]
        already sigmoided (scores).
        Training: returns a dict for a DETR set loss, all logits pre-sigmoid and boxes cxcywh 0..1:
        "pred_logits" [B,Q,C], "pred_boxes" [B,Q,4] (last layer), "aux_outputs" (list of such dicts for
        the earlier decoder layers) and "enc_outputs" (the same for the selected encoder proposals).
        """
        x = (images.float() - self.pixel_mean) / self.pixel_std  # [B, 3, H, W]
        out = self.decoder(self.encoder(self.backbone(x)))
        if self.training:
            return out
        return box_cxcywh_to_xyxy(out["pred_boxes"]), out["pred_logits"].sigmoid()  # [B, Q, 4], [B, Q, C]


def build_model(config: dict, num_classes: int) -> FaiDetr:
    """Build FAI-DETR from a registry config (unknown keys such as top_k are ignored)."""
    return FaiDetr(config, num_classes)
