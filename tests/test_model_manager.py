"""ModelManager strategies and their failures."""

from __future__ import annotations

import pytest
import torch

from focoos import (
    FocoosError,
    ModelInfo,
    ModelInfoError,
    ModelManager,
    ModelNotFoundError,
    UnsupportedFamilyError,
    WeightsError,
)
from tests.conftest import quiet_get, small_detr_info
from tests.parity import assert_same_detections


def test_local_folder_round_trip_keeps_weights(tmp_path, small_detr, scene):
    small_detr.save(tmp_path / "my_model")
    loaded = ModelManager.get(str(tmp_path / "my_model"), device="cpu")  # weights present: no warning
    assert loaded.name == small_detr.name and loaded.classes == small_detr.classes
    assert_same_detections(loaded.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_model_info_strategy_with_config_overrides():
    model = quiet_get("renamed", model_info=small_detr_info(), transformer_predictor_dec_layers=1, im_size=192)
    assert model.name == "renamed"
    assert model.config["transformer_predictor_dec_layers"] == 1 and model.resolution == (192, 192)


def test_weights_uri_local_path_loads(tmp_path, small_detr, scene):
    torch.save(small_detr.model.state_dict(), tmp_path / "w.pth")
    model = ModelManager.get(
        "x", model_info=small_detr_info(), weights_uri=str(tmp_path / "w.pth"), device="cpu"
    )
    assert_same_detections(model.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_weights_with_wrong_shapes_name_the_keys(tmp_path, small_detr):
    small_detr.save(tmp_path / "m")
    config = {**small_detr_info().config, "transformer_predictor_hidden_dim": 32}
    wider = small_detr_info().model_copy(update={"config": config})
    wider.dump_json(tmp_path / "m" / "model_info.json")
    with pytest.raises(WeightsError, match="shape mismatches"):
        ModelManager.get(str(tmp_path / "m"))


def test_corrupt_weights_file(tmp_path):
    (tmp_path / "m").mkdir()
    small_detr_info().dump_json(tmp_path / "m" / "model_info.json")
    (tmp_path / "m" / "model_final.pth").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot read weights"):
        ModelManager.get(str(tmp_path / "m"))


def test_folder_without_model_info(tmp_path):
    with pytest.raises(ModelInfoError, match="has no model_info.json"):
        ModelManager.get(str(tmp_path))


def test_unknown_name():
    with pytest.raises(ModelNotFoundError, match="neither a registry model"):
        ModelManager.get("definitely-not-a-model")


def test_hub_reference_says_what_is_missing():
    with pytest.raises(FocoosError, match="hub"):
        ModelManager.get("hub://abc123")


def test_family_without_the_task_is_unsupported():
    info = ModelInfo(name="pose", model_family="rtmo", task="detection", classes=["person"], im_size=64)
    with pytest.raises(UnsupportedFamilyError, match="rtmo"):
        ModelManager.get("pose", model_info=info)


def test_override_that_breaks_consistency_is_a_model_info_error():
    with pytest.raises(ModelInfoError, match="num_classes"):
        ModelManager.get("fai-cls-n-coco", num_classes=3)
