"""Every registry entry: valid metadata, real class lists, and a network that builds and infers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focoos import ModelManager, ModelNotFoundError, ModelRegistry, NoWeightsWarning, Task

# Dataset token in the name -> number of classes (semantic digits add "background").
CLASS_COUNTS = {"digits-sem": 11, "digits": 10, "coco": 80, "obj365": 365, "ade": 150}
REGISTRY_NAMES = ModelRegistry.list_models()
WITHOUT_WEIGHTS = [n for n in REGISTRY_NAMES if not ModelRegistry.get_model_info(n).weights_uri]


def test_registry_lists_the_focoos_names():
    expected = {
        "fai-mf-l-coco-ins",
        "fai-mf-m-coco-ins",
        "fai-mf-s-coco-ins",
        "fai-mf-l-ade",
        "fai-mf-m-ade",
        "bisenetformer-l-ade",
        "bisenetformer-m-ade",
        "bisenetformer-s-ade",
        "fai-detr-l-coco",
        "fai-detr-m-coco",
        "fai-detr-l-obj365",
        "fai-cls-n-coco",
        "fai-cls-s-coco",
        "fai-cls-m-coco",
    }
    assert expected <= set(REGISTRY_NAMES)


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_entry_is_valid_with_real_classes(name):
    info = ModelRegistry.get_model_info(name)
    assert info.name == name
    dataset = next(token for token in CLASS_COUNTS if f"-{token}" in name)
    assert info.num_classes == CLASS_COUNTS[dataset] == info.config["num_classes"]
    if dataset == "coco":
        assert info.classes[0] == "person" and info.classes[-1] == "toothbrush"


@pytest.mark.parametrize("name", WITHOUT_WEIGHTS)
def test_registry_model_builds_warns_about_random_weights_and_infers(name, scene):
    # Small input keeps the large variants fast; the architecture is the registry's own.
    with pytest.warns(NoWeightsWarning, match="RANDOM weights.*weights_uri"):
        model = ModelManager.get(name, im_size=160 if "detr" in name else 64, device="cpu")
    det = model.infer(scene, threshold=0.0, top_k=5)
    if model.task == Task.SEMSEG:  # one detection per class present in the label map
        assert 1 <= len(det.detections) <= 5
    else:
        assert len(det.detections) == 5
    assert all(d.label in model.classes for d in det.detections)
    if model.task != Task.CLASSIFICATION:
        assert all(0 <= d.bbox[0] <= d.bbox[2] <= scene.shape[1] for d in det.detections)
    if model.task in (Task.INSTANCE_SEGMENTATION, Task.SEMSEG):
        assert all(d.mask for d in det.detections)


def test_unknown_name_lists_the_registry():
    with pytest.raises(ModelNotFoundError, match="fai-detr-m-coco"):
        ModelRegistry.get_model_info("no-such-model")


def test_registry_files_are_plain_model_info_json():
    for path in Path(ModelRegistry.registry_dir).glob("*.json"):
        data = json.loads(path.read_text())
        assert {"name", "model_family", "classes", "im_size", "task", "config"} <= set(data)
