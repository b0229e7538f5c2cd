"""STDC backbone (Short-Term Dense Concatenate) with Focoos' module names, so its weights load as-is."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from focoos.models.layers import ConvBNReLU
from focoos.nn.backbone.stdc import STDCConfig

# size -> (base, layers, block_num, block_type); a size overrides the explicit keys, as in Focoos.
STDC_SIZES: dict[str, tuple[int, list[int], int, str]] = {
    "nano": (32, [2, 2, 2], 4, "cat"),
    "small": (64, [2, 2, 2], 4, "cat"),
    "large": (64, [4, 5, 3], 4, "cat"),
}


def _depthwise_down(channels: int) -> nn.Sequential:
    """Stride-2 depthwise 3x3 conv + BN: how STDC blocks downsample."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, 2, padding=1, groups=channels, bias=False), nn.BatchNorm2d(channels)
    )


def _conv_list(in_planes: int, out_planes: int, block_num: int) -> nn.ModuleList:
    """Widths halve at every step (out/2, out/4, ...); the last conv keeps its input width."""
    if block_num < 2:
        raise ValueError(f"STDC block_num must be at least 2, got {block_num}")
    widths = [out_planes // 2 ** (i + 1) for i in range(block_num - 1)] + [out_planes // 2 ** (block_num - 1)]
    convs = [ConvBNReLU(in_planes, widths[0], kernel=1)]
    convs += [ConvBNReLU(widths[i - 1], widths[i]) for i in range(1, block_num)]
    return nn.ModuleList(convs)


class _Bottleneck(nn.Module):
    """STDC's chain of convs (`conv_list`); striding, a depthwise downsample (`avd_layer`) after the first."""

    def __init__(self, in_planes: int, out_planes: int, block_num: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv_list = _conv_list(in_planes, out_planes, block_num)
        if stride == 2:
            self.avd_layer = _depthwise_down(out_planes // 2)


class CatBottleneck(_Bottleneck):
    """Chain of convs whose outputs are concatenated; stride 2 downsamples after the first conv."""

    def __init__(self, in_planes: int, out_planes: int, block_num: int = 3, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, block_num, stride)
        if stride == 2:
            self.skip = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        first = self.conv_list[0](x)
        out = self.avd_layer(first) if self.stride == 2 else first
        outs = []
        for conv in self.conv_list[1:]:
            out = conv(out)
            outs.append(out)
        if self.stride == 2:
            first = self.skip(first)
        return torch.cat([first, *outs], dim=1)


class AddBottleneck(_Bottleneck):
    """Like CatBottleneck, plus a residual connection (a depthwise + 1x1 projection when striding)."""

    def __init__(self, in_planes: int, out_planes: int, block_num: int = 3, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, block_num, stride)
        if stride == 2:
            self.skip = nn.Sequential(
                *_depthwise_down(in_planes),
                nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = x
        outs = []
        for idx, conv in enumerate(self.conv_list):
            out = conv(out)
            if idx == 0 and self.stride == 2:
                out = self.avd_layer(out)
            outs.append(out)
        residual = self.skip(x) if self.stride == 2 else x
        return torch.cat(outs, dim=1) + residual


def stdc_settings(config: STDCConfig) -> tuple[int, list[int], int, str]:
    """Resolve (base, layers, block_num, block_type) from Focoos' STDC config (size wins)."""
    if config.size is not None:
        if config.size not in STDC_SIZES:
            raise ValueError(f"STDC size must be one of {sorted(STDC_SIZES)}, got {config.size!r}")
        return STDC_SIZES[config.size]
    return config.base, list(config.layers), config.block_num, config.block_type


class STDC(nn.Module):
    """STDC: two stride-2 stems, then three stages; returns res2..res5 (strides 4..32)."""

    def __init__(self, config: STDCConfig) -> None:
        super().__init__()
        base, layers, block_num, block_type = stdc_settings(config)
        if block_type not in ("cat", "add"):
            raise ValueError(f"STDC block_type must be 'cat' or 'add', got {block_type!r}")
        if len(layers) != 3 or min(layers) < 1:
            raise ValueError(f"STDC layers must be three positive stage depths, got {layers}")
        block = CatBottleneck if block_type == "cat" else AddBottleneck
        in_chans = config.in_chans
        features: list[nn.Module] = [ConvBNReLU(in_chans, base // 2, 3, 2), ConvBNReLU(base // 2, base, 3, 2)]
        in_planes = base
        for stage, depth in enumerate(layers):
            out_planes = base * 2 ** (stage + 2)
            for j in range(depth):
                features.append(block(in_planes, out_planes, block_num, 2 if j == 0 else 1))
                in_planes = out_planes
        self.features = nn.Sequential(*features)
        # res2 is the second stem conv; res3..res5 the last block of each stage.
        self.out_ids = (1, 1 + layers[0], 1 + layers[0] + layers[1], 1 + sum(layers))
        channels = (base, base * 4, base * 8, base * 16)
        self._shapes = {f"res{i + 2}": (channels[i], 2 ** (i + 2)) for i in range(4)}

    def output_shape(self) -> dict[str, tuple[int, int]]:
        return dict(self._shapes)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        outs: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_ids:
                outs[f"res{len(outs) + 2}"] = x
        return outs
