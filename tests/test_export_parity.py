"""Eager PyTorch, ONNX Runtime and TorchScript give the same detections (boxes 1 px, scores 1e-3)."""

from __future__ import annotations

import numpy as np
import pytest

from focoos import ExportError, InferModel, ModelInfoError, RuntimeType, RuntimeUnavailableError
from focoos.benchmark import random_batch
from tests.conftest import make_scene
from tests.parity import assert_same_detections

EXPORTED = [RuntimeType.ONNX_CPU, RuntimeType.TORCHSCRIPT_32]
IMAGES = [make_scene(240, 320, seed=1), make_scene(480, 360, seed=2), make_scene(97, 203, seed=3)]


@pytest.fixture(scope="module", params=["small_detr", "small_cls"])
def eager(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def exported(eager, tmp_path_factory) -> dict[RuntimeType, InferModel]:
    out = tmp_path_factory.mktemp("exports")
    return {rt: eager.export(runtime_type=rt, out_dir=out / rt.value, device="cpu") for rt in EXPORTED}


@pytest.mark.parametrize("runtime_type", EXPORTED)
def test_exported_model_matches_eager_single_and_batch(eager, exported, runtime_type):
    infer_model = exported[runtime_type]
    for image in IMAGES:
        assert_same_detections(infer_model.infer(image, threshold=0.0), eager.infer(image, threshold=0.0))
    batch_exported = infer_model.infer(IMAGES + IMAGES[:1], threshold=0.0)
    batch_eager = eager.infer(IMAGES + IMAGES[:1], threshold=0.0)
    assert len(batch_exported) == 4
    for a, b in zip(batch_exported, batch_eager, strict=True):
        assert_same_detections(a, b)


def test_onnx_graph_accepts_other_batch_sizes_and_resolutions(eager, exported):
    runtime = exported[RuntimeType.ONNX_CPU].runtime
    batch = random_batch((192, 224), batch=3)
    onnx_out = runtime(batch)
    eager_out = eager._run_network(batch)
    # Query selection is a top-k over encoder tokens whose scores nearly tie in an untrained model (Focoos'
    # border anchors share features), so runtimes may order equal queries differently or swap the last one
    # at the cut: each image's query rows are compared as sets, all but two must have a partner.
    def rows(out: dict) -> np.ndarray:
        return np.concatenate([out[name].reshape(len(batch), out[name].shape[1], -1) for name in sorted(out)], -1)

    for a, b in zip(rows(onnx_out), rows(eager_out), strict=True):
        distance = np.abs(a[:, None, :] - b[None, :, :]).max(-1)  # [Q, Q]
        assert a.shape == b.shape
        assert (distance.min(1) > 2e-4).sum() <= 2 and (distance.min(0) > 2e-4).sum() <= 2


def test_export_folder_is_self_describing(exported):
    folder = exported[RuntimeType.ONNX_CPU].model_dir
    assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model.onnx", "model_info.json"]
    reloaded = InferModel(folder)
    assert reloaded.runtime_type == RuntimeType.ONNX_CPU


def test_export_at_another_image_size(small_detr, tmp_path):
    infer_model = small_detr.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "e", image_size=192)
    assert infer_model.model_info.input_hw == (192, 192)
    assert len(infer_model.infer(IMAGES[0], threshold=0.0, top_k=7).detections) == 7


def test_failed_export_leaves_nothing_behind(small_cls, tmp_path):
    with pytest.raises(ExportError, match="onnx_cpu failed"):
        small_cls.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "bad", onnx_opset=99)
    assert list(tmp_path.iterdir()) == []


def test_export_without_overwrite_reuses_the_existing_file(small_cls, tmp_path):
    first = small_cls.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "e")
    written = first.model_path.stat().st_mtime_ns
    again = small_cls.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "e", overwrite=False)
    assert again.model_path == first.model_path and again.model_path.stat().st_mtime_ns == written
    with pytest.raises(ExportError, match="overwrite=True"):
        small_cls.export(RuntimeType.ONNX_CPU, out_dir=tmp_path / "e", overwrite=False, image_size=64)


@pytest.mark.parametrize(
    "runtime_type", [RuntimeType.ONNX_CUDA32, RuntimeType.ONNX_TRT16, RuntimeType.ONNX_COREML]
)
def test_missing_runtime_is_refused_with_what_is_available(small_cls, tmp_path, runtime_type):
    """InferModel refuses a runtime this machine lacks; export(), as Focoos' does, warns and runs on the CPU."""
    from focoos.hardware import HardwareFallbackWarning

    with pytest.warns(HardwareFallbackWarning, match=f"{runtime_type.value} was asked for"):
        exported = small_cls.export(runtime_type, out_dir=tmp_path / "e")
    assert exported.runtime_type == RuntimeType.ONNX_CPU
    with pytest.raises(RuntimeUnavailableError, match="Available: .*onnx_cpu"):
        InferModel(exported.model_path, runtime_type)


def test_export_cannot_run_under_the_other_format(exported):
    with pytest.raises(ModelInfoError, match="cannot run as torchscript_32"):
        InferModel(exported[RuntimeType.ONNX_CPU].model_dir, RuntimeType.TORCHSCRIPT_32)


def test_benchmarks_report_latency_metrics(eager, exported):
    eager_metrics = eager.benchmark(iterations=3)
    onnx_metrics = exported[RuntimeType.ONNX_CPU].benchmark(iterations=3)
    e2e = exported[RuntimeType.ONNX_CPU].end2end_benchmark(iterations=3)
    assert eager_metrics.engine == "torch" and onnx_metrics.engine == "onnx_cpu"
    for m in (eager_metrics, onnx_metrics, e2e):
        assert 0 < m.min <= m.p50 <= m.max and m.fps > 0 and m.device == "cpu"
