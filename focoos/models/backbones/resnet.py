"""ResNet (PResNet / RT-DETR layout, variants a-d) with Focoos' module names, so its weights load as-is."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focoos.models.layers import ConvNormLayer, activation
from focoos.nn.backbone.resnet import ResnetConfig

RESNET_BLOCKS: dict[int, list[int]] = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine terms, all buffers (what freeze_norm swaps in)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


def _shortcut(ch_in: int, ch_out: int, stride: int, variant: str) -> nn.Module:
    """Projection shortcut; variant d downsamples with an average pool before the 1x1 conv."""
    if variant == "d" and stride == 2:
        pool = nn.AvgPool2d(2, 2, 0, ceil_mode=True)
        return nn.Sequential(OrderedDict([("pool", pool), ("conv", ConvNormLayer(ch_in, ch_out, 1, 1))]))
    return ConvNormLayer(ch_in, ch_out, 1, stride)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, ch_in: int, ch_out: int, stride: int, shortcut: bool, act: str = "relu", variant: str = "b"):
        super().__init__()
        self.shortcut = shortcut
        if not shortcut:
            self.short = _shortcut(ch_in, ch_out, stride, variant)
        self.branch2a = ConvNormLayer(ch_in, ch_out, 3, stride, act=act)
        self.branch2b = ConvNormLayer(ch_out, ch_out, 3, 1)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch2b(self.branch2a(x))
        return self.act(out + (x if self.shortcut else self.short(x)))


class BottleNeck(nn.Module):
    expansion = 4

    def __init__(self, ch_in: int, ch_out: int, stride: int, shortcut: bool, act: str = "relu", variant: str = "b"):
        super().__init__()
        stride1, stride2 = (stride, 1) if variant == "a" else (1, stride)
        self.branch2a = ConvNormLayer(ch_in, ch_out, 1, stride1, act=act)
        self.branch2b = ConvNormLayer(ch_out, ch_out, 3, stride2, act=act)
        self.branch2c = ConvNormLayer(ch_out, ch_out * self.expansion, 1, 1)
        self.shortcut = shortcut
        if not shortcut:
            self.short = _shortcut(ch_in, ch_out * self.expansion, stride, variant)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch2c(self.branch2b(self.branch2a(x)))
        return self.act(out + (x if self.shortcut else self.short(x)))


class Blocks(nn.Module):
    """One stage: the first block projects (and strides, except in res2), the rest are identity-residual."""

    def __init__(self, block: type, ch_in: int, ch_out: int, count: int, stage_num: int, act: str, variant: str):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(count):
            stride = 2 if i == 0 and stage_num != 2 else 1
            self.blocks.append(block(ch_in, ch_out, stride=stride, shortcut=i > 0, act=act, variant=variant))
            ch_in = ch_out * block.expansion

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def _freeze_norm(module: nn.Module) -> None:
    """Swap every BatchNorm2d below `module` for a FrozenBatchNorm2d (fresh identity buffers)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features))
        else:
            _freeze_norm(child)


class ResNet(nn.Module):
    """ResNet-18/34/50/101; variants c/d use the three-conv stem. Returns res2..res5 (strides 4..32)."""

    def __init__(self, config: ResnetConfig) -> None:
        super().__init__()
        depth = config.depth
        if depth not in RESNET_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BLOCKS)}, got {depth}")
        variant = config.variant
        act = config.act
        num_stages = config.num_stages
        if num_stages != 4:
            raise ValueError(f"ResNet num_stages must be 4 (res2..res5 are returned), got {num_stages}")
        in_chans = config.in_chans
        if variant in ("c", "d"):
            stem = [(in_chans, 32, 3, 2, "conv1_1"), (32, 32, 3, 1, "conv1_2"), (32, 64, 3, 1, "conv1_3")]
        else:
            stem = [(in_chans, 64, 7, 2, "conv1_1")]
        self.conv1 = nn.Sequential(OrderedDict((n, ConvNormLayer(i, o, k, s, act=act)) for i, o, k, s, n in stem))

        block = BottleNeck if depth >= 50 else BasicBlock
        widths = [64, 128, 256, 512]
        self.res_layers = nn.ModuleList()
        ch_in = 64
        for i, count in enumerate(RESNET_BLOCKS[depth]):
            self.res_layers.append(Blocks(block, ch_in, widths[i], count, i + 2, act=act, variant=variant))
            ch_in = widths[i] * block.expansion
        self._shapes = {f"res{i + 2}": (widths[i] * block.expansion, 2 ** (i + 2)) for i in range(4)}

        freeze_at = config.freeze_at
        if freeze_at >= 0:
            for module in [self.conv1, *self.res_layers[: min(freeze_at, num_stages)]]:
                for p in module.parameters():
                    p.requires_grad_(False)
        if config.freeze_norm:
            _freeze_norm(self)

    def output_shape(self) -> dict[str, tuple[int, int]]:
        return dict(self._shapes)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)
        outs: dict[str, Tensor] = {}
        for i, stage in enumerate(self.res_layers):
            x = stage(x)
            outs[f"res{i + 2}"] = x
        return outs
