"""Shared backbones (STDC, ResNet) build Focoos' state-dict layout for every registry model that uses them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from focoos.models.backbones import FrozenBatchNorm2d, build_backbone  # noqa: E402
from focoos.models.backbones.stdc import AddBottleneck  # noqa: E402
from tests.focoos_reference import MANIFEST_NAMES, manifest  # noqa: E402


def _backbone_manifests() -> list[str]:
    return [
        name
        for name in MANIFEST_NAMES
        if manifest(name)["model_info"]["config"]["backbone_config"]["model_type"] in ("stdc", "resnet")
    ]


def _prefix(name: str) -> str:
    return "backbone." if manifest(name)["model_info"]["model_family"] == "fai_cls" else "pixel_decoder.backbone."


@pytest.mark.parametrize("name", _backbone_manifests())
def test_backbone_state_dict_equals_the_manifest_rows(name: str) -> None:
    prefix = _prefix(name)
    state = manifest(name)["state_dict"]
    rows = [(key[len(prefix) :], tuple(shape)) for key, shape, *_ in state if key.startswith(prefix)]
    backbone = build_backbone(manifest(name)["model_info"]["config"]["backbone_config"])
    assert rows, name
    assert [(key, tuple(value.shape)) for key, value in backbone.state_dict().items()] == rows


def test_the_manifests_cover_stdc_both_styles_and_resnet_50_101() -> None:
    configs = [manifest(name)["model_info"]["config"]["backbone_config"] for name in _backbone_manifests()]
    assert {c.get("size") for c in configs if c["model_type"] == "stdc"} >= {None, "nano", "small"}
    assert {c["depth"] for c in configs if c["model_type"] == "resnet"} == {50, 101}


@pytest.mark.parametrize(
    ("config", "channels"),
    [
        ({"model_type": "stdc", "size": "nano"}, (32, 128, 256, 512)),
        ({"model_type": "stdc", "base": 64, "layers": [4, 5, 3], "block_num": 4}, (64, 256, 512, 1024)),
        ({"model_type": "stdc", "layers": [2, 2, 2], "block_type": "add"}, (64, 256, 512, 1024)),
        ({"model_type": "resnet", "depth": 50, "variant": "d", "freeze_norm": False}, (256, 512, 1024, 2048)),
        ({"model_type": "resnet", "depth": 18, "variant": "b"}, (64, 128, 256, 512)),
    ],
)
def test_forward_gives_res2_to_res5_at_strides_4_to_32(config: dict, channels: tuple) -> None:
    backbone = build_backbone(config).eval()
    shapes = backbone.output_shape()
    assert shapes == {f"res{i + 2}": (channels[i], 2 ** (i + 2)) for i in range(4)}
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 96, 64))
    assert list(features) == ["res2", "res3", "res4", "res5"]
    for key, (chans, stride) in shapes.items():
        assert tuple(features[key].shape) == (2, chans, 96 // stride, 64 // stride), key


def test_stdc_size_overrides_explicit_keys_like_focoos() -> None:
    small = build_backbone({"model_type": "stdc", "size": "small", "base": 32, "layers": [4, 5, 3]})
    explicit = build_backbone({"model_type": "stdc", "base": 64, "layers": [2, 2, 2]})
    assert {k: v.shape for k, v in small.state_dict().items()} == {k: v.shape for k, v in explicit.state_dict().items()}
    add = build_backbone({"model_type": "stdc", "block_type": "add"})
    assert any(isinstance(m, AddBottleneck) for m in add.modules())


def test_resnet_freeze_norm_and_freeze_at() -> None:
    frozen = build_backbone({"model_type": "resnet", "depth": 50, "freeze_at": 1})  # freeze_norm defaults to True
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.modules())
    keys = frozen.state_dict().keys()
    assert "conv1.conv1_1.norm.weight" in keys and not any(k.endswith("num_batches_tracked") for k in keys)
    assert all(isinstance(m, FrozenBatchNorm2d) for name, m in frozen.named_modules() if name.endswith(".norm"))
    trainable = {".".join(name.split(".")[:2]) for name, p in frozen.named_parameters() if p.requires_grad}
    assert "res_layers.0" not in trainable and "res_layers.1" in trainable
    assert not any(p.requires_grad for p in frozen.conv1.parameters())


def test_unknown_backbone_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mobilenet_v9"):
        build_backbone({"model_type": "mobilenet_v9", "size": "small"})
    with pytest.raises(ValueError, match="size"):
        build_backbone({"model_type": "stdc", "size": "huge"})
    with pytest.raises(ValueError, match="depth"):
        build_backbone({"model_type": "resnet", "depth": 152})
