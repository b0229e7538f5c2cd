"""Checks every family test runs on its networks: Focoos' state-dict layout, eager runs, ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.focoos_reference import build_network, manifest, model_info, synthetic_state_dict


def assert_focoos_layout(name: str) -> torch.nn.Module:
    """The network of manifest `name` has Focoos' state dict (keys, shapes, dtypes, param or buffer, order) and
    parameter count, and loads the synthetic checkpoint strictly; returns it."""
    network = build_network(name)
    params = {k for k, _ in network.named_parameters()}
    ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch."), "param" if k in params else "buffer"]
            for k, v in network.state_dict().items()]
    assert ours == manifest(name)["state_dict"]
    assert sum(p.numel() for p in network.parameters()) == manifest(name)["parameters"]
    network.load_state_dict(synthetic_state_dict(name, network), strict=True)
    return network


def assert_focoos_empty_weight(network: torch.nn.Module, name: str) -> None:
    """Focoos' criterion buffer: weight 1 per class and criterion_eos_coef (0.1) for "no object"."""
    expected = torch.ones(model_info(name).num_classes + 1)
    expected[-1] = model_info(name).config.get("criterion_eos_coef", 0.1)
    assert torch.equal(network.state_dict()["head.criterion.empty_weight"], expected)


def eager(network: torch.nn.Module, batch: np.ndarray) -> Any:
    """The network's outputs for a numpy batch, without gradients."""
    with torch.no_grad():
        return network(torch.from_numpy(batch))


def to_input_size(masks: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Masks at the mask stride resized to the input, as Focoos' eval forward does inside its graph."""
    return F.interpolate(masks, size=hw, mode="bilinear", align_corners=False)


def export_dynamic_onnx(network: torch.nn.Module, example: torch.Tensor, path: Path) -> Any:
    """Export with a dynamic batch and input size (and the network's own output axes); an ONNX Runtime session."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    names = list(network.output_names)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", **getattr(network, "output_axes", {}).get(n, {})} for n in names})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(path), dynamo=False, opset_version=18, input_names=["images"],
                          output_names=names, dynamic_axes=axes)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
