"""Shared fixtures: small real models (built with the production code) and images on disk."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from focoos import ModelFamily, ModelInfo, ModelManager, NoWeightsWarning, Task

# Registry names carry Focoos' weights URLs: tests never reach for them (they build random weights).
os.environ.setdefault("FOCOOS_OFFLINE", "1")

SMALL_DETR_CONFIG = {
    "backbone": "stdc1",
    "hidden_dim": 64,
    "num_queries": 50,
    "num_heads": 4,
    "num_decoder_layers": 2,
    "dim_feedforward": 128,
    "depth_mult": 0.34,
    "num_classes": 3,
}


def make_scene(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """An RGB image with a few filled shapes on a textured background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    cv2.rectangle(image, (20, 30), (120, 150), (220, 40, 40), -1)
    cv2.circle(image, (220, 120), 50, (40, 200, 60), -1)
    cv2.rectangle(image, (150, 170), (300, 230), (50, 60, 230), -1)
    return image


@pytest.fixture(scope="session")
def scene() -> np.ndarray:
    return make_scene()


@pytest.fixture(scope="session")
def image_path(tmp_path_factory: pytest.TempPathFactory, scene: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("images") / "scene.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    return path


def small_detr_info(name: str = "tiny-detr") -> ModelInfo:
    return ModelInfo(
        name=name,
        model_family=ModelFamily.DETR,
        task=Task.DETECTION,
        classes=["red", "green", "blue"],
        im_size=160,
        config=dict(SMALL_DETR_CONFIG),
    )


def quiet_get(*args, **kwargs):
    """ModelManager.get without the random-weights warning (tests build untrained models on purpose)."""
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWeightsWarning)
        return ModelManager.get(*args, **kwargs)


@pytest.fixture(scope="session")
def small_detr():
    return quiet_get("tiny-detr", model_info=small_detr_info(), device="cpu")


@pytest.fixture(scope="session")
def small_cls():
    return quiet_get("fai-cls-n-coco", im_size=96, device="cpu")
