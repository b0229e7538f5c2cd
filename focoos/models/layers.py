"""Building blocks shared by the model families and backbones (the way timm keeps timm/layers).

Attribute names are Focoos' own, so each block yields the state-dict keys of Focoos' checkpoints; a
change here reaches every family that uses the block. Family-specific details stay in the families.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from focoos.models.bisenetformer.config import BisenetFormerConfig
    from focoos.models.fai_mf.config import MaskFormerConfig

IMAGENET_MEAN = [123.675, 116.28, 103.53]  # Focoos' default pixel_mean and pixel_std, for 0..255 RGB
IMAGENET_STD = [58.395, 57.12, 57.375]
PIXEL_STATS = {"pixel_mean": IMAGENET_MEAN, "pixel_std": IMAGENET_STD}  # as config keys, every family's default
MASKED = -1e4  # finite "minus infinity" for attention: exp underflows to 0 in fp32, and it stays finite in fp16
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU, "glu": nn.GLU}


# -- input
def register_pixel_stats(module: nn.Module, mean: list[float], std: list[float]) -> None:
    """`pixel_mean`/`pixel_std` as [1, C, 1, 1] float buffers, non-persistent: Focoos' checkpoints lack them."""
    for name, values in (("pixel_mean", mean), ("pixel_std", std)):
        module.register_buffer(name, torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Raw 0..255 RGB (uint8 or float) -> (x - mean) / std; inside the graph, so servers send raw pixels."""
    return (images.to(mean.dtype) - mean) / std


# -- convolutions
def activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name.lower() not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name.lower()]()


class Conv2d(nn.Conv2d):
    """detectron2's conv: optional norm and ReLU as attributes (keys `<name>.weight`, `<name>.norm.*`)."""

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


class ConvNormLayer(nn.Module):
    """conv (no bias, 'same' padding) -> BatchNorm -> optional activation; keys `conv.*`, `norm.*`."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, act: str | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU; keys `conv.*`, `bn.*`."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


# -- attention and transformer layers
def xavier_init(module: nn.Module) -> None:
    """Mask2Former's init: xavier-uniform for every matrix below `module`."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class Attention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameters (packed in_proj, out_proj), batch first.

    Plain matmul/softmax, so it exports anywhere; `bias` is added to the scores [B, heads | 1, Lq, Lk]
    (masked attention).
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
        rows = slice(index * self.heads * self.head_dim, (index + 1) * self.heads * self.head_dim)
        x = F.linear(x, self.in_proj_weight[rows], self.in_proj_bias[rows])
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)  # [B, h, L, d]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None) -> Tensor:
        q = self._heads(query, 0) * (1.0 / math.sqrt(self.head_dim))
        k, v = self._heads(key, 1), self._heads(value, 2)
        scores = q @ k.transpose(-1, -2)  # [B, h, Lq, Lk]
        if bias is not None:
            scores = scores + bias
        weights = scores.softmax(-1)
        if self.dropout > 0:
            weights = F.dropout(weights, self.dropout, self.training)
        out = (weights @ v).transpose(1, 2)  # [B, Lq, h, d]
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


def _init_attention_layer(layer: nn.Module, attn: Attention, m2f_init: bool) -> None:
    """Mask2Former draws every matrix of the layer again (FAI-MF); BiSeNetFormer only adds out_proj's.

    Same distributions, other random draws: the flag keeps each family's seeded builds as they were.
    """
    if m2f_init:
        xavier_init(layer)
    else:
        nn.init.xavier_uniform_(attn.out_proj.weight)


class _PreNormAttentionLayer(nn.Module):
    """An Attention named `attention_name` (its key in Focoos' checkpoints) and the LayerNorm before it."""

    attention_name: str

    def __init__(self, dim: int, heads: int, m2f_init: bool = True) -> None:
        super().__init__()
        self.add_module(self.attention_name, Attention(dim, heads))
        self.norm = nn.LayerNorm(dim)
        _init_attention_layer(self, self.get_submodule(self.attention_name), m2f_init)


class SelfAttentionLayer(_PreNormAttentionLayer):
    """Pre-norm self-attention with a residual; the query position goes into queries and keys."""

    attention_name = "self_attn"

    def forward(self, x: Tensor, query_pos: Tensor) -> Tensor:
        y = self.norm(x)
        q = y + query_pos
        return x + self.self_attn(q, q, y)


class CrossAttentionLayer(_PreNormAttentionLayer):
    """Pre-norm (masked) cross-attention from the queries to one memory map, with a residual."""

    attention_name = "multihead_attn"

    def forward(self, x: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor, bias: Tensor | None) -> Tensor:
        return x + self.multihead_attn(self.norm(x) + query_pos, memory + pos, memory, bias)


class FFNLayer(nn.Module):
    """Pre-norm two-layer ReLU MLP with a residual."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        xavier_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


class MLP(nn.Module):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, cin: int, hidden: int, cout: int, num_layers: int) -> None:
        super().__init__()
        dims = [cin] + [hidden] * (num_layers - 1) + [cout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def sine_position(x: Tensor, num_feats: int, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised sine embedding of a [B, C, H, W] map's grid -> [1, H*W, 2 * num_feats] (y first)."""
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


# -- Mask2Former decoder and head
MASKFORMER_HEADS = 8  # attention heads of Focoos' Mask2Former decoder: fixed, not a config key
# Focoos' defaults for the config keys every Mask2Former family reads (its pixel decoder adds its own); the
# same in MaskFormerConfig and BisenetFormerConfig, for readers of the plain config dict (the training loss).
MASKFORMER_DEFAULTS: dict[str, Any] = {
    "num_queries": 100,
    **PIXEL_STATS,
    "pixel_decoder_out_dim": 256,
    "pixel_decoder_feat_dim": 256,
    "transformer_predictor_out_dim": 256,
    "transformer_predictor_hidden_dim": 256,
    "transformer_predictor_dec_layers": 6,
    "transformer_predictor_dim_feedforward": 1024,
    "cls_sigmoid": False,
    "criterion_eos_coef": 0.1,
}


class PredictionHeads(nn.Module):
    """Per query: class logits over C+1 (last = no object) and mask logits (embedding . mask features).

    `einsum` keeps BiSeNetFormer's op (one Einsum node in its exported graph); FAI-MF exports a MatMul.
    """

    def __init__(self, dim: int, num_classes: int, mask_dim: int, einsum: bool = False) -> None:
        super().__init__()
        self.einsum = einsum
        self.decoder_norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes + 1)
        self.mask_classifier = MLP(dim, dim, mask_dim, 3)

    def forward(self, queries: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor]:
        x = self.decoder_norm(queries)  # [B, Q, D]
        embed = self.mask_classifier(x)
        if self.einsum:
            masks = torch.einsum("bqc,bchw->bqhw", embed, mask_features)
        else:
            b, _, h, w = mask_features.shape
            masks = (embed @ mask_features.flatten(2)).reshape(b, -1, h, w)
        return self.classifier(x), masks


class MaskedTransformerDecoder(nn.Module):
    """Mask2Former decoder: learned queries refined layer by layer (masked cross-attention on one memory map
    in turn, self-attention, FFN; pre-norm), every layer predicting classes and masks.

    `attention_bias(mask_logits, size)` turns the last masks into the additive attention mask: the
    families build it with different ops (their exported graphs), so each passes its own. `einsum` and
    `m2f_init` keep BiSeNetFormer's mask product and init order (see PredictionHeads, _init_attention_layer).
    """

    def __init__(
        self,
        in_channels: int,
        mask_dim: int,
        num_classes: int,
        hidden_dim: int,
        num_queries: int,
        heads: int,
        dim_feedforward: int,
        dec_layers: int,
        levels: int,
        attention_bias: Callable[[Tensor, torch.Size], Tensor],
        einsum: bool = False,
        m2f_init: bool = True,
    ) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers = hidden_dim, dec_layers
        self.num_levels = min(levels, dec_layers)
        self.attention_bias = attention_bias
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, heads, m2f_init) for _ in range(dec_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, heads, m2f_init) for _ in range(dec_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden_dim, dim_feedforward) for _ in range(dec_layers))
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        conv = Conv2d if m2f_init else nn.Conv2d  # BiSeNetFormer draws all the convs, then their init
        self.input_proj = nn.ModuleList(conv(in_channels, hidden_dim, 1) for _ in range(self.num_levels))
        if not m2f_init:
            for proj in self.input_proj:
                nn.init.kaiming_uniform_(proj.weight, a=1)
                nn.init.zeros_(proj.bias)
        self.forward_prediction_heads = PredictionHeads(hidden_dim, num_classes, mask_dim, einsum)

    def forward(self, memory: list[Tensor], mask_features: Tensor) -> list[tuple[Tensor, Tensor]]:
        """memory: maps coarsest first; one (class logits, mask logits) per layer, the learned queries' own first."""
        maps = memory[: self.num_levels]
        src = [proj(m).flatten(2).transpose(1, 2) for proj, m in zip(self.input_proj, maps, strict=True)]  # [B, hw, D]
        pos = [sine_position(m, self.hidden_dim // 2) for m in maps]  # [1, hw, D]
        sizes = [m.shape[-2:] for m in maps]
        x = self.query_feat.weight.unsqueeze(0).expand(mask_features.shape[0], -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0)
        predictions = [self.forward_prediction_heads(x, mask_features)]
        for i in range(self.num_layers):
            level = i % self.num_levels
            bias = self.attention_bias(predictions[-1][1], sizes[level])
            x = self.transformer_cross_attention_layers[i](x, src[level], pos[level], query_pos, bias)
            x = self.transformer_self_attention_layers[i](x, query_pos)
            x = self.transformer_ffn_layers[i](x)
            predictions.append(self.forward_prediction_heads(x, mask_features))
        return predictions


def maskformer_outputs(
    predictions: list[tuple[Tensor, Tensor]], training: bool, cls_sigmoid: bool
) -> tuple[Tensor, Tensor] | dict[str, Any]:
    """Training: the last layer's raw logits/masks and the earlier ones as aux_outputs (the criterion's input);
    eval: sigmoid masks and class probabilities without "no object"."""
    logits, masks = predictions[-1]
    if training:
        aux = [{"pred_logits": lg, "pred_masks": mk} for lg, mk in predictions[:-1]]
        return {"pred_logits": logits, "pred_masks": masks, "aux_outputs": aux}
    probs = logits.sigmoid() if cls_sigmoid else logits.softmax(-1)
    return masks.sigmoid(), probs[..., :-1]


class CriterionBuffers(nn.Module):
    """Holds Focoos' `criterion.empty_weight` (class weights, eos_coef for "no object") so checkpoints
    round-trip; the losses themselves live in training/."""

    def __init__(self, num_classes: int, eos_coef: float) -> None:
        super().__init__()
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)


class Head(nn.Module):
    """Focoos' `head.criterion.*` + `head.predictor.*` layout; calling it calls the predictor."""

    def __init__(self, predictor: nn.Module, num_classes: int, eos_coef: float) -> None:
        super().__init__()
        self.criterion = CriterionBuffers(num_classes, eos_coef)
        self.predictor = predictor

    def forward(self, *args: Any) -> Any:
        return self.predictor(*args)


class MaskFormerNetwork(nn.Module):
    """A Mask2Former family: `pixel_decoder` (normalised images -> mask features and memory maps, coarsest
    first) and Focoos' `head` (the masked decoder over `levels` of those maps, read from `cfg`).

    Eval returns (sigmoid masks at the mask stride, class probabilities without "no object"); training the
    criterion's dict (see maskformer_outputs). `variant`: the family's `levels`, `attention_bias` and, if
    they differ from the defaults, `einsum`/`m2f_init` (see MaskedTransformerDecoder).
    """

    output_axes = {"masks": {2: "mask_height", 3: "mask_width"}}  # besides the batch, masks follow the input size

    def __init__(self, cfg: MaskFormerConfig | BisenetFormerConfig, num_classes: int, pixel_decoder: nn.Module,
                 **variant: Any) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_sigmoid = cfg.cls_sigmoid
        self.pixel_decoder = pixel_decoder
        predictor = MaskedTransformerDecoder(
            in_channels=cfg.pixel_decoder_out_dim,
            mask_dim=cfg.transformer_predictor_out_dim,
            num_classes=num_classes,
            hidden_dim=cfg.transformer_predictor_hidden_dim,
            num_queries=cfg.num_queries,
            heads=MASKFORMER_HEADS,
            dim_feedforward=cfg.transformer_predictor_dim_feedforward,
            dec_layers=cfg.transformer_predictor_dec_layers,
            **variant,
        )
        self.head = Head(predictor, num_classes, cfg.criterion_eos_coef)
        register_pixel_stats(self, cfg.pixel_mean, cfg.pixel_std)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor] | dict[str, Any]:
        mask_features, memory = self.pixel_decoder(normalize(images, self.pixel_mean, self.pixel_std))
        return maskformer_outputs(self.head(memory, mask_features), self.training, self.cls_sigmoid)
