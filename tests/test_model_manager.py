"""ModelManager strategies and their failures."""

from __future__ import annotations

import json

import pytest
import torch
from focoos.builder import RepositoryBuilder
from focoos.builder.configs import read_config

from focoos import (
    FocoosError,
    ModelInfo,
    ModelInfoError,
    ModelManager,
    ModelNotFoundError,
    NoWeightsWarning,
    RuntimeType,
    UnsupportedFamilyError,
    WeightsError,
)
from focoos.cli import main
from focoos.errors import RandomWeightsError
from focoos.ports import RANDOM_WEIGHTS_STATUS
from focoos.weights import cached_weights_path
from tests.conftest import quiet_get, small_detr_info
from tests.parity import assert_same_detections


def test_local_folder_round_trip_keeps_weights_and_that_they_are_random(tmp_path, small_detr, scene):
    small_detr.save(tmp_path / "my_model")
    with pytest.warns(NoWeightsWarning, match=RANDOM_WEIGHTS_STATUS):  # saving does not make them pretrained
        loaded = ModelManager.get(str(tmp_path / "my_model"), device="cpu")
    assert loaded.random_weights is not None
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


BUILD = {"runtime_type": RuntimeType.ONNX_CPU, "target": "embedded"}


def test_registry_model_without_its_weights_is_not_built_or_exported(tmp_path):
    with pytest.warns(NoWeightsWarning, match="RANDOM"):  # trying it out in Python only warns
        model = ModelManager.get("fai-detr-m-coco", im_size=160, device="cpu")
    url = model.model_info.weights_uri
    for attempt in (lambda: RepositoryBuilder(tmp_path / "repo").add(model, **BUILD),
                    lambda: model.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "export")):
        with pytest.raises(RandomWeightsError) as refused:
            attempt()
        for hint in (url, str(cached_weights_path(url)), "weights_uri=", "allow_random_weights=True",
                     "--allow-random-weights"):
            assert hint in str(refused.value)
    assert RepositoryBuilder(tmp_path / "repo").list() == [] and not (tmp_path / "export").exists()


def test_model_without_weights_uri_counts_as_random(tmp_path):
    with pytest.warns(NoWeightsWarning, match="no pretrained weights"):
        model = ModelManager.get("tiny", model_info=small_detr_info(), device="cpu")
    with pytest.raises(RandomWeightsError, match="model.train"):
        RepositoryBuilder(tmp_path).add(model, **BUILD)


def test_opted_in_random_weights_are_marked_untrained(tmp_path):
    registry_info = ModelManager.get("fai-detr-m-coco", im_size=160, device="cpu",
                                     allow_random_weights=True).model_info  # no warning when opted in
    info = small_detr_info().model_copy(update={"status": "TRAINING_COMPLETED", "val_metrics": {"bbox/AP": 44.7},
                                                "val_dataset": "coco"})
    model = quiet_get("tiny", model_info=info, device="cpu")
    assert registry_info.val_metrics and model.model_info.val_metrics  # local info stays as loaded
    served = RepositoryBuilder(tmp_path / "repo").add(model, name="det", **BUILD)
    assert served.weights == "random"
    exported = model.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "export").model_info
    params = _ensemble_parameters(tmp_path / "repo" / "det")
    for published in (json.loads(params["model_info"]), exported.model_dump(mode="json")):
        assert published["status"] == RANDOM_WEIGHTS_STATUS
        assert not published.get("val_metrics") and not published.get("weights_uri")
    assert params["weights"] == "random"


def test_loaded_weights_are_served_as_loaded(tmp_path, small_detr):
    torch.save(small_detr.model.state_dict(), tmp_path / "w.pth")
    model = ModelManager.get("x", model_info=small_detr_info(), weights_uri=str(tmp_path / "w.pth"), device="cpu")
    assert model.random_weights is None
    assert RepositoryBuilder(tmp_path / "repo").add(model, name="det", **BUILD).weights == "loaded"


def _ensemble_parameters(folder):
    return {k: v.string_value for k, v in read_config(folder).parameters.items()}


def test_cli_build_refuses_random_weights_unless_opted_in(tmp_path, capsys):
    repo = tmp_path / "repo"
    build = ["build", "--model", "fai-detr-m-coco", "--im-size", "160", "--runtime", "onnx_cpu",
             "--target", "embedded", "--repository", str(repo), "--name", "det"]
    assert main(build) == 2
    error = capsys.readouterr().err
    assert "RandomWeightsError" in error and "fai-detr-m-coco" in error and "--allow-random-weights" in error
    assert "https://" in error  # the URL of the weights that could not be fetched
    assert main([*build, "--allow-random-weights"]) == 0
    assert RepositoryBuilder(repo).get("det").weights == "random"
    assert main(["serve", "--repository", str(repo)]) == 2  # refused before any server starts
    assert "--allow-random-weights" in capsys.readouterr().err


@pytest.mark.parametrize("content", [
    "[1, 2]", '"text"', "3", "null",
    json.dumps({**small_detr_info().model_dump(mode="json"), "classes": "red"}),
    json.dumps({**small_detr_info().model_dump(mode="json"), "classes": [{"name": "red"}]}),
    json.dumps({**small_detr_info().model_dump(mode="json"), "config": [1]}),
    json.dumps({**small_detr_info().model_dump(mode="json"), "im_size": "big"}),
    json.dumps({**small_detr_info().model_dump(mode="json"), "config": {"num_classes": [3]}}),
    json.dumps({**small_detr_info().model_dump(mode="json"), "model_family": 7}),
], ids=["list", "string", "number", "null", "classes-string", "classes-objects", "config-list", "im-size-string",
        "num-classes-list", "family-number"])
def test_malformed_model_info_is_a_model_info_error(tmp_path, content):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_info.json").write_text(content)
    with pytest.raises(ModelInfoError):
        ModelManager.get(str(tmp_path / "m"), device="cpu")
