"""Every registry entry: valid metadata, real class lists, and a network that builds and infers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from focoos import ModelInfo, ModelManager, ModelNotFoundError, ModelRegistry, NoWeightsWarning, Task, model_manager
from tests import focoos_reference as ref

# Dataset token in the name -> number of classes (semantic digits add "background").
CLASS_COUNTS = {"digits-sem": 11, "digits": 10, "coco": 80, "obj365": 365, "ade": 150}
REGISTRY_NAMES = ModelRegistry.list_models()
FOCOOS_NAMES = ref.supported(ref.MANIFEST_NAMES)  # Focoos' registry


def test_registry_lists_the_focoos_names():
    assert set(FOCOOS_NAMES) <= set(REGISTRY_NAMES)


@pytest.mark.parametrize("name", FOCOOS_NAMES)
def test_registry_entry_is_focoos_own_json(name):
    """Classes, config, metrics and the weights URL on Focoos' server, as Focoos 0.25 ships them."""
    info = ModelRegistry.get_model_info(name)
    assert info.model_dump(mode="json", exclude_none=True) == ModelInfo.model_validate(
        ref.manifest(name)["model_info"]).model_dump(mode="json", exclude_none=True)
    assert info.weights_uri == f"https://public.focoos.ai/pretrained_models/{name}/model_final.pth"


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_entry_is_valid_with_real_classes(name):
    info = ModelRegistry.get_model_info(name)
    assert info.name == name
    if info.task == Task.KEYPOINT:  # COCO keypoints: people only
        assert info.classes == ["person"] and info.config["num_classes"] == 1
        return
    dataset = next(token for token in CLASS_COUNTS if f"-{token}" in name)
    assert info.num_classes == CLASS_COUNTS[dataset] == info.config["num_classes"]
    if dataset == "coco":
        assert info.classes[0] == "person" and info.classes[-1] == "toothbrush"


@pytest.mark.parametrize("name", FOCOOS_NAMES)
def test_focoos_name_offline_warns_with_its_url_and_infers(name, scene, monkeypatch):
    monkeypatch.setattr(model_manager, "_WARNED_UNREACHABLE", set())  # other tests may have loaded it already
    # Small input keeps the large variants fast; the architecture is Focoos' own.
    url = ModelRegistry.get_model_info(name).weights_uri
    with pytest.warns(NoWeightsWarning, match=f"{re.escape(url)}.*RANDOM weights"):
        model = ModelManager.get(name, im_size=160 if "detr" in name else 64, device="cpu")
    det = model.infer(scene, threshold=0.0, top_k=5)
    assert 1 <= len(det.detections) <= 5
    assert all(d.label in model.classes for d in det.detections)
    if model.task in (Task.INSTANCE_SEGMENTATION, Task.SEMSEG):
        assert all(d.mask for d in det.detections)


def test_unknown_name_lists_the_registry():
    with pytest.raises(ModelNotFoundError, match="fai-detr-m-coco"):
        ModelRegistry.get_model_info("no-such-model")


def test_registry_files_are_plain_model_info_json():
    for path in Path(ModelRegistry.registry_dir).glob("*.json"):
        data = json.loads(path.read_text())
        assert {"name", "model_family", "classes", "im_size", "task", "config"} <= set(data)
