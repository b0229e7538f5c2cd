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

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.backbones import build_backbone
from focoos.models.bisenetformer.config import BisenetFormerConfig
from focoos.models.layers import MASKED, ConvBNReLU, MaskFormerNetwork
from focoos.nn.backbone.base import BackboneConfig

# BisenetFormerConfig's defaults in JSON form, for readers of the plain config dict (ModelManager).
DEFAULTS: dict[str, Any] = BisenetFormerConfig.defaults()


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

    def __init__(self, backbone_config: BackboneConfig, feat_dim: int, out_dim: int) -> None:
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


def attention_bias(mask_logits: Tensor, size: torch.Size) -> Tensor:
    """Masked attention: a query attends only where its last mask is foreground (everywhere if nowhere).

    Boolean ops, broadcast over the heads: BiSeNetFormer's exported graph.
    """
    blocked = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False).flatten(2) < 0
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)  # [B, Q, HW]
    return (blocked.to(mask_logits.dtype) * MASKED).unsqueeze(1).detach()  # [B, 1, Q, HW], broadcast over heads


class BisenetFormer(MaskFormerNetwork):
    """images [B,3,H,W] raw RGB 0..255 -> eval: masks [B,Q,ceil(H/8),ceil(W/8)] (sigmoid, at the mask
    stride: upsample to the input size as Focoos does) and logits [B,Q,C] (softmax without the
    no-object class, or sigmoid with cls_sigmoid); training: raw pred_logits/pred_masks + aux_outputs."""

    def __init__(self, config: BisenetFormerConfig | Mapping[str, Any], num_classes: int | None = None) -> None:
        cfg = BisenetFormerConfig.parse(config, num_classes)
        num_classes = cfg.num_classes  # None: the config's, as Focoos builds it
        decoder = BiseNet(cfg.backbone_config, cfg.pixel_decoder_feat_dim, cfg.pixel_decoder_out_dim)
        # the stride-32 and stride-16 context maps; BiSeNetFormer's mask product and init order
        super().__init__(cfg, num_classes, decoder, levels=2, attention_bias=attention_bias, einsum=True,
                         m2f_init=False)


def build_model(config: BisenetFormerConfig | Mapping[str, Any], num_classes: int) -> BisenetFormer:
    """BiSeNetFormer from its typed config or Focoos' JSON form of it (postprocessing and loss fields are not
    the network's; a config that does not fit raises ModelConfigError). `num_classes` wins over the config's."""
    return BisenetFormer(config, num_classes)
