"""Data contracts: ModelInfo validation and JSON, results and their supervision adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from focoos import FocoosDet, FocoosDetections, LatencyMetrics, ModelInfo, ModelInfoError, RuntimeType, Task
from tests.conftest import small_detr_info


def test_model_info_json_round_trip(tmp_path):
    info = small_detr_info()
    path = info.dump_json(tmp_path / "model_info.json")
    assert ModelInfo.from_json(path) == info
    assert ModelInfo.from_json(json.loads(path.read_text())) == info


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_family": "yolo"}, "model_family"),
        ({"task": "painting"}, "task"),
        ({"classes": []}, "classes"),
        ({"im_size": 8}, "im_size"),
        ({"config": {"num_classes": 7}}, "num_classes=7 does not match the 3 names"),
    ],
)
def test_invalid_model_info_raises_model_info_error_naming_the_field(change, message):
    data = {**small_detr_info().model_dump(mode="json"), **change}
    with pytest.raises(ModelInfoError, match=message):
        ModelInfo.from_json(data)


def test_model_info_file_errors(tmp_path):
    with pytest.raises(ModelInfoError, match="not found"):
        ModelInfo.from_json(tmp_path / "missing.json")
    bad = tmp_path / "model_info.json"
    bad.write_text("{not json")
    with pytest.raises(ModelInfoError, match="not valid JSON"):
        ModelInfo.from_json(bad)


def test_enum_values_follow_the_focoos_names():
    assert (
        RuntimeType.ONNX_TRT16.value == "onnx_trt16" and RuntimeType.TORCHSCRIPT_32.value == "torchscript_32"
    )
    assert Task("instseg") is Task.INSTANCE_SEGMENTATION


def test_latency_metrics_from_samples():
    metrics = LatencyMetrics.from_samples_ms([10.0, 20.0, 30.0], "onnx_cpu", 640, "cpu")
    assert metrics.mean == 20.0 and metrics.fps == 50 and metrics.min == 10.0 and metrics.p50 == 20.0


def test_detections_convert_to_and_from_supervision():
    dets = FocoosDetections(
        detections=[
            FocoosDet(bbox=[1, 2, 30, 40], conf=0.9, cls_id=1, label="b"),
            FocoosDet(bbox=[5, 6, 7, 8], conf=0.4, cls_id=0, label="a"),
        ]
    )
    sv_dets = dets.to_supervision()
    np.testing.assert_array_equal(sv_dets.xyxy, [[1, 2, 30, 40], [5, 6, 7, 8]])
    np.testing.assert_array_equal(sv_dets.class_id, [1, 0])
    back = FocoosDetections.from_supervision(sv_dets, classes=["a", "b"])
    assert [d.model_dump() for d in back.detections] == [d.model_dump() for d in dets.detections]
