"""The Focoos-facing details of the model API: latency units, export files, ModelManager sources, printing, eval."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from focoos import (
    FocoosDet,
    FocoosDetections,
    InferLatency,
    InferModel,
    ModelInfo,
    ModelInfoError,
    ModelRegistry,
    RuntimeType,
    TrainerArgs,
)
from focoos.ports import ExportFormat, ModelExtension
from focoos.settings import models_dir
from tests.conftest import SMALL_DETR_CONFIG, quiet_get, small_detr_info
from tests.parity import assert_same_detections

# Focoos 0.25's RuntimeType values, and the export format / file extension each one writes.
FOCOOS_RUNTIMES = {
    "onnx_cuda32": ("onnx", "onnx"), "onnx_trt32": ("onnx", "onnx"), "onnx_trt16": ("onnx", "onnx"),
    "onnx_cpu": ("onnx", "onnx"), "onnx_coreml": ("onnx", "onnx"), "torchscript_32": ("torchscript", "pt"),
}


@pytest.fixture(scope="module")
def shared_export(small_detr, tmp_path_factory) -> Path:
    """One folder holding both exports next to a run's weights file, as in Focoos' model folders."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "model_final.pth").write_bytes(b"weights")
    small_detr.export(RuntimeType.ONNX_CPU, out_dir=folder, device="cpu")
    small_detr.export(RuntimeType.TORCHSCRIPT_32, out_dir=folder, device="cpu")
    return folder


def test_infer_latency_is_in_seconds(small_detr, scene):
    start = time.perf_counter()
    det = small_detr.infer(scene, threshold=0.0, annotate=True)
    wall_s = time.perf_counter() - start
    stages = det.latency.model_dump()
    assert set(stages) == {"imload", "preprocess", "inference", "postprocess", "annotate"}
    assert det.latency.inference > 0 and det.latency.annotate > 0
    assert sum(stages.values()) <= wall_s + 1e-3  # milliseconds would add up to ~1000x the wall time


def test_exports_use_focoos_file_names_and_keep_the_folder(shared_export):
    names = sorted(p.name for p in shared_export.iterdir())
    assert names == ["export.json", "model.onnx", "model.pt", "model_final.pth", "model_info.json"]
    assert (shared_export / "model_final.pth").read_bytes() == b"weights"
    assert InferModel(shared_export, RuntimeType.ONNX_CPU).model_path.name == "model.onnx"
    assert InferModel(shared_export, device="cpu").runtime_type == RuntimeType.TORCHSCRIPT_32  # the latest export


@pytest.mark.parametrize(
    ("filename", "runtime_type"),
    [("model.onnx", RuntimeType.ONNX_CPU), ("model.pt", None), ("model.pt", RuntimeType.TORCHSCRIPT_32)],
)
def test_infer_model_on_an_exported_file(small_detr, shared_export, scene, filename, runtime_type):
    model = InferModel(shared_export / filename, runtime_type, device="cpu")
    assert model.model_path == shared_export / filename
    assert model.runtime_type == (runtime_type or RuntimeType.TORCHSCRIPT_32)
    assert_same_detections(model.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_infer_model_refuses_a_file_of_the_other_format(shared_export):
    with pytest.raises(ModelInfoError, match=r"cannot run as torchscript_32, which expects \.pt"):
        InferModel(shared_export / "model.onnx", RuntimeType.TORCHSCRIPT_32)
    with pytest.raises(ModelInfoError, match="cannot run as onnx_cpu"):
        InferModel(shared_export / "model.pt", RuntimeType.ONNX_CPU)


def test_export_folders_of_earlier_versions_still_load(small_detr, shared_export, tmp_path, scene):
    """Earlier exports: model.torchscript without embedded names, export.json naming file and outputs."""
    old = tmp_path / "old"
    old.mkdir()
    torch.jit.save(torch.jit.load(str(shared_export / "model.pt")), str(old / "model.torchscript"))
    meta = {"runtime_type": "torchscript_32", "file": "model.torchscript", "output_names": ["boxes", "logits"]}
    (old / "export.json").write_text(json.dumps(meta))
    (old / "model_info.json").write_text((shared_export / "model_info.json").read_text())
    for source in (old, old / "model.torchscript"):
        model = InferModel(source, device="cpu")
        assert model.runtime_type == RuntimeType.TORCHSCRIPT_32
        assert_same_detections(model.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_model_manager_takes_a_path_and_a_run_name_in_models_dir(small_detr, scene):
    run = small_detr.save(models_dir() / "my-run")
    for source in (run, "my-run"):
        loaded = quiet_get(source, device="cpu")
        assert loaded.name == small_detr.name
        assert_same_detections(loaded.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_unknown_config_override_names_the_valid_keys():
    with pytest.raises(ModelInfoError, match=r"num_querys.*valid keys: .*num_queries"):
        quiet_get("tiny", model_info=small_detr_info(), device="cpu", num_querys=10)
    with pytest.raises(ModelInfoError, match="unknown config key"):
        quiet_get("tiny", model_info=small_detr_info(), device="cpu", config={**SMALL_DETR_CONFIG, "colour": 1})


def test_config_argument_replaces_the_config_and_keywords_override_it(scene):
    model = quiet_get("tiny", model_info=small_detr_info(), device="cpu",
                      config={**SMALL_DETR_CONFIG, "num_queries": 20}, top_k=5)
    assert model.config["num_queries"] == 20 and model.config["top_k"] == 5
    assert model._run_network(torch.zeros(1, 3, 160, 160).numpy())["logits"].shape[1] == 20
    assert len(model.infer(scene, threshold=0.0).detections) == 5


def test_registry_reads_a_model_info_json_path(tmp_path):
    path = small_detr_info("from-file").dump_json(tmp_path / "info.json")
    assert ModelRegistry.get_model_info(path).name == "from-file"
    assert ModelRegistry.get_model_info(str(path)).classes == ["red", "green", "blue"]


def test_runtime_types_match_focoos():
    assert {rt.value for rt in RuntimeType} == set(FOCOOS_RUNTIMES)
    for rt in RuntimeType:
        export_format, extension = FOCOOS_RUNTIMES[rt.value]
        assert str(rt) == f"{rt}" == rt.value
        assert rt.to_export_format() == ExportFormat(export_format)
        assert ModelExtension.from_runtime_type(rt) == ModelExtension(extension)


def test_focoos_det_from_json_rounds_boxes(tmp_path):
    data = {"bbox": [1.4, 2.6, 10.2, 20.0], "conf": 0.9, "cls_id": 1, "label": "car", "mask": "aGk="}
    det = FocoosDet.from_json(data)
    assert det.bbox == [1, 3, 10, 20] and det.label == "car"
    (tmp_path / "det.json").write_text(json.dumps(data))
    assert FocoosDet.from_json(tmp_path / "det.json") == det
    assert "mask='hidden'" in repr(det)
    with pytest.raises(ModelInfoError, match="conf"):
        FocoosDet.from_json({"cls_id": 1})


def test_printing_helpers(capsys):
    detections = FocoosDetections(
        detections=[FocoosDet(bbox=[0, 0, 10, 20], conf=0.91, cls_id=0, label="car"),
                    FocoosDet(bbox=[5, 5, 8, 9], conf=0.5, cls_id=1, label="bus", mask="aGk="),
                    FocoosDet(bbox=[1, 1, 2, 2], conf=0.7, cls_id=0, label="car")],
        latency=InferLatency(imload=0.002, preprocess=0.003, inference=0.010, postprocess=0.005),
    )
    detections.infer_print()
    assert capsys.readouterr().out.splitlines() == [
        "1 bus, 2 car", "Latency: imload 2ms, preprocess 3ms, inference 10ms, postprocess 5ms, total 20ms"]
    detections.pprint()
    out = capsys.readouterr().out
    for expected in ("DETECTION RESULTS", "Found 3 detections", "1. car", "Confidence: 0.910", "Bbox: [0, 0, 10, 20]",
                     "Size: 10 x 20", "Has mask: Yes", "inference: 0.010s"):
        assert expected in out
    small_detr_info("printed").pprint()
    out = capsys.readouterr().out
    assert "Name: printed" in out and "Task: detection" in out and "Classes: ['red', 'green', 'blue']" in out


def test_eval_reports_coco_metrics(tmp_path, capsys):
    from focoos.data import AutoDataset, DatasetAugmentations
    from focoos.ports import DatasetLayout, DatasetSplitType, Task
    from tests.test_data import toy_split, write_coco_split

    write_coco_split(tmp_path / "toy" / "valid", *toy_split())
    data_test = AutoDataset("toy", Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, tmp_path).get_split(
        DatasetAugmentations(resolution=160), DatasetSplitType.VAL)
    info = ModelInfo(**{**small_detr_info().model_dump(), "classes": ["cat", "dog"],
                        "config": {**SMALL_DETR_CONFIG, "num_classes": 2}})
    model = quiet_get("tiny", model_info=info, device="cpu")
    args = TrainerArgs(run_name="toy-eval", output_dir=str(tmp_path / "runs"), device="cpu")
    metrics = model.eval(args, data_test)
    assert 0.0 <= metrics["bbox/AP"] <= 100.0
    assert model.model_info.val_metrics == metrics
    assert "bbox/AP" in capsys.readouterr().out
    folder = tmp_path / "runs" / "toy-eval_eval"
    assert json.loads((folder / "metrics.json").read_text()) == [metrics]
    assert ModelInfo.from_json(folder / "model_info.json").val_metrics == metrics


def test_top_level_names_focoos_scripts_import(scene):
    import focoos
    from focoos import ModelStatus, RemoteDataset, RemoteModel, Task, annotate_image

    assert ExportFormat.ONNX.value == "onnx" and ModelExtension.TORCHSCRIPT.value == "pt"
    assert ModelStatus.TRAINING_COMPLETED.value == "TRAINING_COMPLETED" and RemoteModel and RemoteDataset
    det = FocoosDetections(detections=[FocoosDet(bbox=[10, 10, 80, 60], conf=0.9, cls_id=1, label="green")])
    drawn = annotate_image(scene, det, Task.DETECTION, ["red", "green", "blue"])  # Focoos' signature
    assert drawn.shape == scene.shape and not np.array_equal(drawn, scene)
    assert set(focoos.__all__) >= {"FocoosHUB", "annotate_image", "ExportFormat"}
