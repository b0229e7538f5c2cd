"""Focoos 0.25 reference fixtures (tests/data/focoos_reference): manifests, synthetic weights, probes.

The manifests list every state-dict row Focoos builds for its registry models; the probes hold what
Focoos returns for two images with deterministic synthetic weights. See the folder's README.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_DIR = Path(__file__).parent / "data" / "focoos_reference"
MANIFEST_NAMES = sorted(p.stem for p in (REFERENCE_DIR / "manifests").glob("*.json"))
PROBE_NAMES = sorted(p.stem for p in (REFERENCE_DIR / "outputs").glob("*.npz"))
PROBE_IMAGES = ("astronaut.jpg", "chelsea.jpg")  # image0, image1
NORM_STATISTICS = ("running_mean", "running_var")


@cache
def manifest(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / "manifests" / f"{name}.json").read_text())


def supported(names: list[str]) -> list[str]:
    """The names whose family this package implements (RTMO comes with the keypoint task)."""
    from focoos.models import families

    return [n for n in names if manifest(n)["model_info"]["model_family"] in families()]


def probe_image(index: int) -> Path:
    return REFERENCE_DIR / "images" / PROBE_IMAGES[index]


def probe_outputs(name: str) -> dict[str, np.ndarray]:
    with np.load(REFERENCE_DIR / "outputs" / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def probe_detections(name: str) -> list[list[dict[str, Any]]]:
    """Focoos' infer(image, threshold=1e-4) detections, one list per probe image."""
    return json.loads((REFERENCE_DIR / "outputs" / f"{name}.json").read_text())


def synthetic_array(key: str, shape: list[int], dtype: str, kind: str, default: np.ndarray | None) -> np.ndarray:
    """The reference rule: each key's values drawn from a generator seeded by crc32(key)."""
    if "int" in dtype or dtype == "bool":
        return np.zeros(shape, dtype=np.int64 if "int" in dtype else bool)
    last = key.rsplit(".", 1)[-1]
    if kind == "buffer" and last not in NORM_STATISTICS:
        if default is None:
            raise ValueError(f"{key}: a non-statistic buffer keeps the model's own value; none was given")
        return np.asarray(default)
    normal = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(shape)
    if last == "running_mean":
        values = 0.1 * normal
    elif last == "running_var":
        values = 1 + 0.1 * np.abs(normal)
    elif len(shape) == 1 and last == "weight":
        values = 1 + 0.1 * normal
    elif len(shape) <= 1:
        values = 0.02 * normal
    else:
        values = normal / np.sqrt(np.prod(shape[1:]))
    return values.astype(np.float32)


def synthetic_state_dict(name: str, network: Any) -> dict[str, Any]:
    """The synthetic checkpoint of manifest `name`; non-statistic buffers come from `network`."""
    import torch

    own = network.state_dict()
    return {
        key: torch.from_numpy(np.array(  # not ascontiguousarray: it turns 0-d counters into shape (1,)
            synthetic_array(key, shape, dtype, kind, own[key].cpu().numpy() if key in own else None), order="C"
        ))
        for key, shape, dtype, kind in manifest(name)["state_dict"]
    }  # fmt: skip


def model_info(name: str):
    from focoos import ModelInfo

    return ModelInfo.model_validate(manifest(name)["model_info"])


def build_network(name: str):
    """Our family's network built from Focoos' model_info of `name` (random weights)."""
    from focoos.models import build_network as build

    return build(model_info(name))


def synthetic_network(name: str):
    """Our network for `name` with the synthetic checkpoint loaded strictly, in eval mode."""
    network = build_network(name)
    network.load_state_dict(synthetic_state_dict(name, network), strict=True)
    return network.eval()
