"""RTMO in Focoos' state-dict layout: Focoos' checkpoints load strictly and give Focoos' numbers.

backbone (CSP-Darknet) -> neck (hybrid encoder: 1x1 projections, a transformer encoder on the stride-32
map, top-down FPN + bottom-up PAN of CSP-RepVGG blocks, 1x1 projector of the strides 16 and 32) -> head:
per level a classification branch and a pose branch (boxes, keypoint visibility, pose vectors), and the
dynamic coordinate classifier (DCC) that turns a prior's pose vector and box into keypoints: 1-D heatmaps
over bins spread across the box, read out as expected coordinates.

Eval keeps what depends on which detections survive out of the graph: it returns the best
min(nms_topk, priors) priors with their keypoints; the score threshold and NMS are numpy
(`focoos.processing.postprocess.postprocess_keypoints`), shared by local and served inference. The DCC is
per prior, so running it before NMS gives the keypoints Focoos computes after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.data.coco_eval import keypoint_sigmas
from focoos.models.backbones import build_backbone
from focoos.models.backbones.csp_darknet import ConvModule
from focoos.models.layers import normalize, register_pixel_stats
from focoos.models.rtmo.config import RTMOConfig

# RTMOConfig's defaults in JSON form, for readers of the plain config dict (the training loss, ModelManager).
DEFAULTS: dict[str, Any] = RTMOConfig.defaults()
NECK_FEATURES = ("res3", "res4", "res5")
ENCODER_LEVEL = 2  # the transformer encoder runs on res5 only
POSE_GROUPS, CHANNELS_PER_GROUP = 8, 36  # pose branch: grouped convs, widths scale with widen_factor
BBOX_PADDING = 1.25  # DCC bins span the box enlarged by this factor
SOFTMAX_EPS = 1e-8
def bbox_xyxy_to_cs(boxes: Tensor, padding: float = BBOX_PADDING) -> tuple[Tensor, Tensor]:
    """xyxy [..., 4] -> (centre [..., 2], size * padding [..., 2])."""
    return (boxes[..., :2] + boxes[..., 2:]) * 0.5, (boxes[..., 2:] - boxes[..., :2]) * padding


def flatten_levels(maps: list[Tensor]) -> Tensor:
    """Per-level [B, C, h, w] -> [B, sum(h*w), C], row-major inside a level."""
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)


def sine_frequencies(temperature: float, channels: int) -> Tensor:
    """Focoos' dim_t: temperature ** (i / (channels / 2)) for i < channels / 2."""
    half = channels // 2
    return temperature ** (torch.arange(half, dtype=torch.float32) / half)


class SineEncoding(nn.Module):
    """`dim_t` of Focoos' SinePositionalEncoding (a parameter when learnable): position p -> (cos p/t, sin p/t)."""

    def __init__(self, channels: int, temperature: float, learnable: bool = False) -> None:
        super().__init__()
        dim_t = sine_frequencies(temperature, channels)
        if learnable:
            self.dim_t = nn.Parameter(dim_t)
        else:
            self.register_buffer("dim_t", dim_t)

    def forward(self, position: Tensor) -> Tensor:
        """position [...] -> [..., channels]."""
        freq = position.unsqueeze(-1) / self.dim_t
        return torch.cat([freq.cos(), freq.sin()], dim=-1)

    def grid(self, h: int | Tensor, w: int | Tensor, ref: Tensor) -> Tensor:
        """[1, h*w, 2*channels] for a row-major grid: the row's encoding, then the column's."""
        rows = torch.arange(h, device=ref.device).to(torch.float32)
        cols = torch.arange(w, device=ref.device).to(torch.float32)
        enc_h = self(rows)[:, None].expand(-1, cols.shape[0], -1)  # [h, w, c]
        enc_w = self(cols)[None].expand(rows.shape[0], -1, -1)
        return torch.cat([enc_h, enc_w], -1).reshape(1, -1, 4 * self.dim_t.shape[0]).to(ref.dtype)


# -- neck
class RepVGGBlock(nn.Module):
    """3x3 conv-BN plus 1x1 conv-BN, summed, SiLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch_3x3 = ConvModule(channels, channels, 3, eps=1e-5, momentum=0.1, act=False)
        self.branch_1x1 = ConvModule(channels, channels, 1, eps=1e-5, momentum=0.1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(self.branch_3x3(x) + self.branch_1x1(x))


class CSPRepLayer(nn.Module):
    """Two 1x1 branches, one through RepVGG blocks, summed (then a 1x1 if the width changes)."""

    def __init__(self, cin: int, cout: int, num_blocks: int, expansion: float) -> None:
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvModule(cin, hidden, 1, eps=1e-5, momentum=0.1)
        self.conv2 = ConvModule(cin, hidden, 1, eps=1e-5, momentum=0.1)
        self.bottlenecks = nn.Sequential(*(RepVGGBlock(hidden) for _ in range(num_blocks)))
        self.conv3 = ConvModule(hidden, cout, 1, eps=1e-5, momentum=0.1) if hidden != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class SelfAttention(nn.Module):
    """`attn` is torch's attention; the position goes to queries and keys, the input is added back."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        q = x + pos
        return x + self.attn(q, q, x, need_weights=False)[0]


class FFN(nn.Module):
    """Linear-GELU-Linear with the input added back; keys `layers.0.0.*`, `layers.1.*`."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout)),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class EncoderLayer(nn.Module):
    """Post-norm DETR encoder layer."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.ffn = FFN(dim, ffn, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        return self.norms[1](self.ffn(self.norms[0](self.self_attn(x, pos))))


class Encoder(nn.Module):
    def __init__(self, num_layers: int, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ffn, dropout) for _ in range(num_layers))

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return x


class ChannelMapper(nn.Module):
    """`convs.i`: a 1x1 conv + BN (no activation) per output level."""

    def __init__(self, cin: int, cout: int, levels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(ConvModule(cin, cout, 1, eps=1e-5, momentum=0.1, act=False) for _ in range(levels))

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        return [conv(f) for conv, f in zip(self.convs, feats, strict=True)]


class HybridEncoder(nn.Module):
    """`neck`: res3..res5 -> the `output_indices` levels of the PAN (strides 8, 16, 32), projected."""

    def __init__(self, shapes: dict[str, tuple[int, int]], cfg: RTMOConfig) -> None:
        super().__init__()
        hidden = cfg.hidden_dim
        csp, widen = cfg.csp_layers, cfg.widen_factor
        self.hidden = hidden
        self.output_indices = list(cfg.output_indices)
        self.num_encoder_layers = cfg.transformer_encoder_layers
        self.input_proj = nn.ModuleList(
            ConvModule(shapes[name][0], hidden, 1, eps=1e-5, momentum=0.1, act=False) for name in NECK_FEATURES
        )
        self.encoder = nn.ModuleList([Encoder(
            self.num_encoder_layers, cfg.transformer_embed_dims, cfg.transformer_num_heads,
            cfg.transformer_feedforward_channels, cfg.transformer_dropout,
        )])  # fmt: skip
        self.sincos_pos_enc = SineEncoding(hidden // 2, float(cfg.pe_temperature), cfg.spe_learnable)
        levels = len(NECK_FEATURES) - 1
        self.lateral_convs = nn.ModuleList(ConvModule(hidden, hidden, 1, eps=1e-5, momentum=0.1) for _ in range(levels))
        self.fpn_blocks = nn.ModuleList(CSPRepLayer(2 * hidden, hidden, csp, widen) for _ in range(levels))
        self.downsample_convs = nn.ModuleList(
            ConvModule(hidden, hidden, 3, stride=2, eps=1e-5, momentum=0.1) for _ in range(levels)
        )
        self.pan_blocks = nn.ModuleList(CSPRepLayer(2 * hidden, hidden, csp, widen) for _ in range(levels))
        self.projector = ChannelMapper(hidden, cfg.output_dim, len(self.output_indices))

    def forward(self, features: dict[str, Tensor]) -> list[Tensor]:
        proj = [p(features[name]) for p, name in zip(self.input_proj, NECK_FEATURES, strict=True)]
        if self.num_encoder_layers > 0:
            x = proj[ENCODER_LEVEL]
            h, w = x.shape[2], x.shape[3]
            tokens = self.encoder[0](x.flatten(2).transpose(1, 2), self.sincos_pos_enc.grid(h, w, x))
            proj[ENCODER_LEVEL] = tokens.transpose(1, 2).reshape(-1, self.hidden, h, w)
        inner = [proj[-1]]  # top-down, coarse to fine
        for i, low in enumerate(reversed(proj[:-1])):
            high = self.lateral_convs[i](inner[0])
            inner[0] = high
            up = F.interpolate(high, size=low.shape[-2:], mode="nearest")
            inner.insert(0, self.fpn_blocks[i](torch.cat([up, low], dim=1)))
        outs = [inner[0]]  # bottom-up, fine to coarse
        for i in range(len(proj) - 1):
            outs.append(self.pan_blocks[i](torch.cat([self.downsample_convs[i](outs[-1]), inner[i + 1]], dim=1)))
        return self.projector([outs[i] for i in self.output_indices])


# -- head
class HeadModule(nn.Module):
    """Per level: the input's first half through the classification convs, the second through the pose convs."""

    def __init__(self, cfg: RTMOConfig, num_classes: int, levels: int) -> None:
        super().__init__()
        widen = cfg.widen_factor
        cin, cls_ch = int(cfg.in_channels * widen), int(cfg.cls_feat_channels * widen)
        stacked, keypoints = cfg.stacked_convs, cfg.num_keypoints
        pose_ch = POSE_GROUPS * int(widen * CHANNELS_PER_GROUP)
        self.pose_vec_channels = cfg.pose_vec_channels

        def cls_convs() -> nn.Sequential:
            return nn.Sequential(*(ConvModule(cin if i == 0 else cls_ch, cls_ch, 3) for i in range(stacked)))

        def pose_convs() -> nn.Sequential:
            return nn.Sequential(*(
                ConvModule(cin if i == 0 else pose_ch, pose_ch, 3, groups=1 if i == 0 else POSE_GROUPS)
                for i in range(2 * stacked)
            ))  # fmt: skip

        self.conv_cls = nn.ModuleList(cls_convs() for _ in range(levels))
        self.out_cls = nn.ModuleList(nn.Conv2d(cls_ch, num_classes, 1) for _ in range(levels))
        self.conv_pose = nn.ModuleList(pose_convs() for _ in range(levels))
        self.out_bbox = nn.ModuleList(nn.Conv2d(pose_ch, 4, 1) for _ in range(levels))
        self.out_kpt_reg = nn.ModuleList(nn.Conv2d(pose_ch, 2 * keypoints, 1) for _ in range(levels))
        self.out_kpt_vis = nn.ModuleList(nn.Conv2d(pose_ch, keypoints, 1) for _ in range(levels))
        if self.pose_vec_channels > 0:
            self.out_pose = nn.ModuleList(nn.Conv2d(pose_ch, self.pose_vec_channels, 1) for _ in range(levels))

    def forward(self, feats: list[Tensor], with_offsets: bool) -> dict[str, list[Tensor]]:
        out: dict[str, list[Tensor]] = {"cls": [], "bbox": [], "kpt_offsets": [], "kpt_vis": [], "pose": []}
        for i, x in enumerate(feats):
            cls_feat, reg_feat = x.split(x.shape[1] // 2, dim=1)
            cls_feat, reg_feat = self.conv_cls[i](cls_feat), self.conv_pose[i](reg_feat)
            out["cls"].append(self.out_cls[i](cls_feat))
            out["bbox"].append(self.out_bbox[i](reg_feat))
            if with_offsets:  # the regressed keypoints only choose training positives
                out["kpt_offsets"].append(self.out_kpt_reg[i](reg_feat))
            out["kpt_vis"].append(self.out_kpt_vis[i](reg_feat))
            out["pose"].append(self.out_pose[i](reg_feat) if self.pose_vec_channels > 0 else reg_feat)
        return out


class ScaleNorm(nn.Module):
    """x / (|x| / sqrt(dim)) * g."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class ChannelScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class Scale(nn.Module):
    """A learnable scalar factor (0-d parameter `scale`)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class GAU(nn.Module):
    """Gated attention unit over a prior's keypoint tokens (squared-ReLU attention, additive position)."""

    def __init__(self, dim: int, s: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.s, self.e = s, int(dim * expansion)
        self.o = nn.Linear(self.e, dim, bias=False)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(dim)
        self.res_scale = ChannelScale(dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.uv.weight)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """x [..., K, dim], pos [K, s] -> [..., K, dim]."""
        u, v, base = F.silu(self.uv(self.ln(x))).split([self.e, self.e, self.s], dim=-1)
        q = base * self.gamma[0] + self.beta[0] + pos
        k = base * self.gamma[1] + self.beta[1] + pos
        kernel = F.relu(q @ k.transpose(-1, -2) / math.sqrt(self.s)).square()
        return self.res_scale(x) + self.o(u * (self.dropout(kernel) @ v))


class DCC(nn.Module):
    """Dynamic coordinate classifier: a prior's pose vector -> K keypoint tokens -> x and y heatmaps over
    bins spread across its padded box (bins encoded by their position relative to the prior)."""

    def __init__(self, cfg: RTMOConfig | Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(cfg, RTMOConfig):  # the DCC alone (the loss tests): it does not depend on the classes
            cfg = RTMOConfig.parse(cfg, cfg.get("num_classes", 1))
        self.num_keypoints, self.channels = cfg.num_keypoints, cfg.feat_channels_dcc
        pose_ch, spe_ch, s = cfg.pose_vec_channels, cfg.spe_channels, cfg.gau_s
        x_bins, y_bins = cfg.num_bins
        self.spe = SineEncoding(spe_ch, 300.0)
        self.gau = GAU(self.channels, s, cfg.gau_expansion_factor, cfg.gau_dropout_rate)
        self.pos_enc = nn.Parameter(torch.randn(self.num_keypoints, s))
        self.pose_to_kpts = nn.Sequential(
            nn.Linear(pose_ch, self.channels * self.num_keypoints), nn.BatchNorm1d(self.channels * self.num_keypoints)
        )
        self.x_fc = nn.Linear(spe_ch, self.channels)
        self.y_fc = nn.Linear(spe_ch, self.channels)
        self.sigma_fc = nn.Sequential(nn.Linear(pose_ch, self.num_keypoints), nn.Sigmoid(), Scale(0.1))
        self.register_buffer("y_bins", torch.linspace(-0.5, 0.5, y_bins))
        self.register_buffer("x_bins", torch.linspace(-0.5, 0.5, x_bins))

    def _keypoint_tokens(self, pose: Tensor) -> Tensor:
        """[..., P] -> [..., K, channels] (the batch norm sees every leading dim as one batch)."""
        linear, norm = self.pose_to_kpts
        feats = norm(linear(pose).reshape(-1, self.channels * self.num_keypoints))
        feats = feats.reshape(*pose.shape[:-1], self.num_keypoints, self.channels)
        return self.gau(feats, self.pos_enc)

    def _bins(self, cs: Tensor) -> tuple[Tensor, Tensor]:
        """Bin positions [..., Bx], [..., By] across boxes cs [..., 4] (centre, padded size)."""
        return (self.x_bins * cs[..., 2:3] + cs[..., 0:1], self.y_bins * cs[..., 3:4] + cs[..., 1:2])

    def _heatmap(self, tokens: Tensor, fc: nn.Linear, relative_bins: Tensor) -> Tensor:
        """Softmaxed 1-D heatmap [..., K, B]: tokens . fc(sine(bins)), with fc folded into the tokens (same
        products, without the [..., B, channels] encoding)."""
        logits = (tokens @ fc.weight) @ self.spe(relative_bins).transpose(-1, -2) + (tokens @ fc.bias)[..., None]
        logits = logits.clamp(-5e4, 5e4)
        exp = (logits - logits.max(-1, keepdim=True).values.detach()).exp()
        return exp / (exp.sum(-1, keepdim=True) + SOFTMAX_EPS)

    def heatmaps(self, pose: Tensor, cs: Tensor, grids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """pose [..., P], cs [..., 4], grids [..., 2] (the priors' x, y) -> keypoints [..., K, 2] in input
        pixels and the x, y heatmaps [..., K, Bx], [..., K, By]."""
        tokens = self._keypoint_tokens(pose)
        x_bins, y_bins = self._bins(cs)
        x_hms = self._heatmap(tokens, self.x_fc, x_bins - grids[..., 0:1])
        y_hms = self._heatmap(tokens, self.y_fc, y_bins - grids[..., 1:2])
        x = (x_hms * x_bins.unsqueeze(-2)).sum(-1)
        y = (y_hms * y_bins.unsqueeze(-2)).sum(-1)
        return torch.stack([x, y], -1), x_hms, y_hms

    def forward_train(self, pose: Tensor, cs: Tensor, grids: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        """Focoos' training call: (keypoints [M, K, 2], (x_hms, y_hms), sigmas [M, K])."""
        keypoints, x_hms, y_hms = self.heatmaps(pose, cs, grids)
        return keypoints, (x_hms, y_hms), self.sigma_fc(pose)

    def generate_target_heatmap(self, kpt_targets: Tensor, cs: Tensor, sigmas: Tensor,
                                areas: Tensor) -> tuple[Tensor, Tensor]:
        """Laplacian target heatmaps [M, K, Bx], [M, K, By] around the ground truth, over the same bins."""
        x_bins, y_bins = self._bins(cs)
        dist_x = (kpt_targets[..., 0:1] - x_bins.unsqueeze(1)).abs()
        dist_y = (kpt_targets[..., 1:2] - y_bins.unsqueeze(1)).abs()
        areas = areas.pow(0.5).clip(min=1).reshape(-1, 1, 1)
        sigmas = sigmas.clip(min=1e-3).unsqueeze(2)
        hm_x = torch.exp(-dist_x / areas / sigmas / 2) / sigmas
        hm_y = torch.exp(-dist_y / areas / sigmas / 2) / sigmas
        return hm_x, hm_y


class OKSBuffers(nn.Module):
    """Focoos' `criterion.loss_oks.sigmas` buffer, kept so checkpoints round-trip; losses live in training/."""

    def __init__(self, num_keypoints: int) -> None:
        super().__init__()
        self.register_buffer("sigmas", torch.as_tensor(keypoint_sigmas(num_keypoints), dtype=torch.float32))


class Criterion(nn.Module):
    def __init__(self, num_keypoints: int) -> None:
        super().__init__()
        self.loss_oks = OKSBuffers(num_keypoints)


def level_values(maps: list[Tensor], values: list[float]) -> Tensor:
    """[N]: each level's value repeated over its cells (built from the maps, so traced sizes stay symbolic)."""
    return torch.cat([torch.full_like(m[0, 0].reshape(-1), v) for m, v in zip(maps, values, strict=True)])


def grid_priors(maps: list[Tensor], strides: list[int], centralize: bool) -> Tensor:
    """[N, 4] (x, y, stride_w, stride_h) of every cell, levels in order, row-major: cell centres at
    (i + 0.5) * stride, or with Focoos' centralize_points at i * stride + (stride - 1) / 2."""
    priors = []
    for m, stride in zip(maps, strides, strict=True):
        centre = (stride - 1) / 2.0 if centralize else 0.5 * stride
        xs = torch.arange(m.shape[-1], device=m.device).to(torch.float32) * stride + centre
        ys = torch.arange(m.shape[-2], device=m.device).to(torch.float32) * stride + centre
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        s = torch.full_like(gx, float(stride))
        priors.append(torch.stack([gx, gy, s, s], -1).reshape(-1, 4))
    return torch.cat(priors).to(maps[0].dtype)


def decode_boxes(raw: Tensor, xy: Tensor, stride: Tensor) -> Tensor:
    """(dx, dy, log w, log h) in strides around the priors -> xyxy input pixels."""
    stride = stride[..., None]
    centre, size = raw[..., :2] * stride + xy, raw[..., 2:].exp() * stride
    return torch.cat([centre - size / 2, centre + size / 2], -1)


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x [B, N, ...], index [B, k] -> [B, k, ...]."""
    expanded = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, expanded)


class RTMOHead(nn.Module):
    """`head`: Focoos' criterion buffers, the per-level branches and the DCC."""

    def __init__(self, cfg: RTMOConfig, num_classes: int) -> None:
        super().__init__()
        self.num_keypoints = cfg.num_keypoints
        self.featmap_strides = list(cfg.featmap_strides)
        self.prior_strides = list(cfg.featmap_strides_pointgenerator)
        if len(self.featmap_strides) != len(self.prior_strides):
            raise ValueError("rtmo: featmap_strides and featmap_strides_pointgenerator must have the same length")
        self.centralize = cfg.centralize_points_pointgenerator
        self.nms_topk = cfg.nms_topk
        self.criterion = Criterion(self.num_keypoints)
        self.head_module = HeadModule(cfg, num_classes, len(self.featmap_strides))
        self.dcc = DCC(cfg)

    def forward(self, feats: list[Tensor]) -> dict[str, Any] | tuple[Tensor, Tensor, Tensor]:
        out = self.head_module(feats, with_offsets=self.training)
        priors = grid_priors(out["cls"], self.prior_strides, self.centralize)  # [N, 4]
        cls, bbox, vis, pose = (flatten_levels(out[k]) for k in ("cls", "bbox", "kpt_vis", "pose"))
        if self.training:
            offsets = flatten_levels(out["kpt_offsets"])
            stride = priors[:, 3]
            kpts = offsets.reshape(*offsets.shape[:2], self.num_keypoints, 2) * stride[:, None, None]
            return {
                "cls_scores": cls, "bbox_preds": bbox, "bbox_decoded": decode_boxes(bbox, priors[:, :2], stride),
                "kpt_offsets": offsets, "kpt_decoded": kpts + priors[:, None, :2], "kpt_vis": vis, "pose_vecs": pose,
                "priors": priors, "dcc": self.dcc,
            }  # fmt: skip
        strides = level_values(out["cls"], [float(s) for s in self.featmap_strides])
        scores = cls.sigmoid()
        # [B, k] best first; a sort cut at nms_topk (not topk) keeps k symbolic in exported graphs
        top = scores.max(-1).values.argsort(dim=1, descending=True)[:, : self.nms_topk]
        grids = priors[:, :2][top]  # [B, k, 2]
        boxes = decode_boxes(gather_rows(bbox, top), grids, strides[top])
        keypoints, _, _ = self.dcc.heatmaps(gather_rows(pose, top), torch.cat(bbox_xyxy_to_cs(boxes), -1), grids)
        return boxes, gather_rows(scores, top), torch.cat([keypoints, gather_rows(vis, top).sigmoid()[..., None]], -1)


class RTMO(nn.Module):
    """Takes raw 0..255 RGB [B,3,H,W] (uint8 or float); normalisation is in the graph.

    Eval returns the best min(nms_topk, priors) priors, best first: boxes [B,k,4] xyxy and keypoints
    [B,k,K,3] (x, y, visibility probability), coordinates normalised to the input, and class probabilities
    scores [B,k,C]. Training returns the dense per-prior outputs a loss consumes (see RTMOHead.forward).
    """


    def __init__(self, config: RTMOConfig | Mapping[str, Any], num_classes: int | None = None) -> None:
        super().__init__()
        cfg = RTMOConfig.parse(config, num_classes)
        num_classes = cfg.num_classes  # None: the config's, as Focoos builds it
        if cfg.transformer_embed_dims != cfg.hidden_dim:
            raise ValueError("rtmo: transformer_embed_dims must equal hidden_dim")
        self.num_classes = num_classes
        self.num_keypoints = cfg.num_keypoints
        self.backbone = build_backbone(cfg.backbone_config)
        self.neck = HybridEncoder(self.backbone.output_shape(), cfg)
        self.head = RTMOHead(cfg, num_classes)
        register_pixel_stats(self, cfg.pixel_mean, cfg.pixel_std)

    def forward(self, images: Tensor) -> dict[str, Any] | tuple[Tensor, Tensor, Tensor]:
        out = self.head(self.neck(self.backbone(normalize(images, self.pixel_mean, self.pixel_std))))
        if self.training:
            return out
        boxes, scores, keypoints = out
        h, w = images.shape[-2], images.shape[-1]
        size = torch.stack([torch.as_tensor(w), torch.as_tensor(h)]).to(boxes)
        return boxes / size.repeat(2), scores, torch.cat([keypoints[..., :2] / size, keypoints[..., 2:]], -1)


def build_model(config: RTMOConfig | Mapping[str, Any], num_classes: int) -> RTMO:
    """RTMO from its typed config or Focoos' JSON form of it (absent keys take Focoos' defaults; an unknown key,
    a missing field or a wrong type raises ModelConfigError). `num_classes` wins over the config's."""
    return RTMO(config, num_classes)
