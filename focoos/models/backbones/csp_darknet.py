"""CSP-Darknet (YOLOv5/YOLOX backbone, as MMPose and Focoos build it) with Focoos' module names.

Sizes small/medium/large: stem (Focus: space-to-depth then 3x3 conv) and four stride-2 stages of a conv
and a CSP layer, the last with spatial pyramid pooling first. Returns res2..res5 (strides 4..32).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from focoos.nn.backbone.csp_darknet import CSPConfig

# size -> per stage (in, out, blocks, identity shortcut in the blocks, SPP before the CSP layer)
CSP_SIZES: dict[str, list[tuple[int, int, int, bool, bool]]] = {
    "small": [(32, 64, 1, True, False), (64, 128, 3, True, False), (128, 256, 3, True, False),
              (256, 512, 1, False, True)],
    "medium": [(48, 96, 2, True, False), (96, 192, 6, True, False), (192, 384, 6, True, False),
               (384, 768, 2, False, True)],
    "large": [(64, 128, 3, True, False), (128, 256, 9, True, False), (256, 512, 9, True, False),
              (512, 1024, 3, False, True)],
}  # fmt: skip


class ConvModule(nn.Module):
    """conv (no bias, 'same' padding) -> BatchNorm -> optional SiLU; keys `conv.*`, `bn.*`.

    Darknet's batch norms use eps 1e-3 and momentum 0.03 (YOLO's); other users pass torch's defaults.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 eps: float = 1e-3, momentum: float = 0.03, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps, momentum=momentum)
        self.activate = nn.SiLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.bn(self.conv(x)))


class DarknetBottleneck(nn.Module):
    """1x1 then 3x3 conv, plus the input when the widths agree and `add_identity`."""

    def __init__(self, channels: int, add_identity: bool) -> None:
        super().__init__()
        self.conv1 = ConvModule(channels, channels, 1)
        self.conv2 = ConvModule(channels, channels, 3)
        self.add_identity = add_identity

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Main branch (1x1 + bottlenecks) and short branch (1x1) at half width, concatenated, fused by a 1x1."""

    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool) -> None:
        super().__init__()
        mid = cout // 2
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*(DarknetBottleneck(mid, add_identity) for _ in range(num_blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.final_conv(torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], dim=1))


class Focus(nn.Module):
    """Space to depth (the four pixel phases as channels), then a 3x3 conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvModule(4 * cin, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        phases = [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]]
        return self.conv(torch.cat(phases, dim=1))


class SPPBottleneck(nn.Module):
    """Half-width 1x1, max pools 5/9/13 (stride 1) concatenated with it, fused by a 1x1."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernels)
        self.conv2 = ConvModule(mid * (len(kernels) + 1), cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(pool(x) for pool in self.poolings)], dim=1))


class CSPDarknet(nn.Module):
    """`stem`, `stage1`..`stage4`; res2..res5 are the stage outputs."""

    def __init__(self, config: CSPConfig) -> None:
        super().__init__()
        size = config.size
        if size not in CSP_SIZES:
            raise ValueError(f"csp_darknet size must be one of {sorted(CSP_SIZES)}, got {size!r}")
        stages = CSP_SIZES[size]
        self.stem = Focus(3, stages[0][0])
        for i, (cin, cout, blocks, identity, spp) in enumerate(stages):
            layers: list[nn.Module] = [ConvModule(cin, cout, 3, stride=2)]
            if spp:
                layers.append(SPPBottleneck(cout, cout))
            layers.append(CSPLayer(cout, cout, blocks, identity))
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
        self._shapes = {f"res{i + 2}": (stage[1], 2 ** (i + 2)) for i, stage in enumerate(stages)}

    def output_shape(self) -> dict[str, tuple[int, int]]:
        return dict(self._shapes)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        outs: dict[str, Tensor] = {}
        for i in range(4):
            x = getattr(self, f"stage{i + 1}")(x)
            outs[f"res{i + 2}"] = x
        return outs
