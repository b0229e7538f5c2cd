"""One engine per precision (focoos.infer.runtimes.PRECISION_ENGINES): the embedded network step on OpenVINO, served by
a real tritonserver and called through the client, answers as the ONNX Runtime step does; bf16 is refused on a CPU
without it, by the builder and by the step; the metadata records precision and engine; the export's graph
optimisation keeps the outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from focoos import RuntimeType
from focoos.infer.runtimes import PRECISION_ENGINES, cpu_precisions, openvino_config
from tests.conftest import quiet_get
from tests.parity import assert_same_detections

pytest.importorskip("openvino")
MODEL = "fai-detr-n-digits"  # bundled weights: real detections to compare
THRESHOLD = 0.3
HAS_BF16 = "bf16" in cpu_precisions()


def canvases(count: int, seed: int) -> list[np.ndarray]:
    """Digit canvases the bundled detector never trained on."""
    from focoos.data.digits import draw_digits, load_mnist_digits, split_by_class

    digits, labels, _ = load_mnist_digits()
    _, pool = split_by_class(labels)
    rng = np.random.default_rng(seed)
    return [draw_digits(rng, digits, labels, pool, 256, (2, 6), (1.0, 3.0))[0] for _ in range(count)]


@pytest.fixture(scope="module")
def model():
    return quiet_get(MODEL, device="cpu")


@pytest.fixture(scope="module")
def repository(model, tmp_path_factory):
    """fp32 on each engine (`openvino` stands in PRECISION_ENGINES for fp32 while it builds), and bf16 where the CPU
    computes it."""
    from focoos.builder import RepositoryBuilder

    root = tmp_path_factory.mktemp("repository")
    builder = RepositoryBuilder(root)
    options = {"target": "embedded", "max_batch_size": 2, "preprocess_instances": 1, "postprocess_instances": 1}
    builder.add(model, name="ort", **options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRECISION_ENGINES, "fp32", "openvino")
        builder.add(model, name="ov", **options)
    if HAS_BF16:
        builder.add(model, name="bf16", precision="bf16", **options)
    return root


@pytest.fixture(scope="module")
def server(repository):
    from focoos.builder import TritonServer

    with TritonServer(repository) as running:
        yield running


def _parameters(root, name: str) -> dict[str, str]:
    from focoos.builder.configs import read_config

    return {key: value.string_value for key, value in read_config(root / name).parameters.items()}


def test_metadata_records_precision_and_engine(repository):
    assert {k: _parameters(repository, "ort")[k] for k in ("precision", "engine")} == {
        "precision": "fp32", "engine": "onnxruntime"}
    assert {k: _parameters(repository, "ov")[k] for k in ("precision", "engine")} == {
        "precision": "fp32", "engine": "openvino"}
    network = _parameters(repository, "ov_model")
    assert network["engine"] == "openvino" and json.loads(network["openvino_config"]) == openvino_config("fp32")
    assert _parameters(repository, "ort_model")["engine"] == "onnxruntime"
    assert "openvino_config" not in _parameters(repository, "ort_model")


@pytest.mark.slow
def test_openvino_step_answers_as_the_onnxruntime_step(server, model):
    from focoos.client import TritonInferModel

    with TritonInferModel(server.grpc_url, "ort") as ort, TritonInferModel(server.grpc_url, "ov") as ov:
        for image in canvases(3, seed=3):
            expected = ort.infer(image, threshold=THRESHOLD)
            assert expected.detections, "the bundled detector finds digits"
            assert_same_detections(ov.infer(image, threshold=THRESHOLD), expected)
            assert_same_detections(expected, model.infer(image, threshold=THRESHOLD))


@pytest.mark.skipif(not HAS_BF16, reason="this CPU computes no bf16")
@pytest.mark.slow
def test_bf16_is_served_close_to_fp32(server, model):
    from focoos.client import TritonInferModel

    assert _parameters(server.repository, "bf16")["engine"] == "openvino"
    with TritonInferModel(server.grpc_url, "bf16") as bf16:
        for image in canvases(3, seed=3):
            served = bf16.infer(image, threshold=THRESHOLD).detections
            for det in model.infer(image, threshold=0.5).detections:  # clear fp32 answers, served at a lower bar
                assert any(d.cls_id == det.cls_id and abs(d.conf - det.conf) <= 0.05
                           and max(abs(a - b) for a, b in zip(d.bbox, det.bbox, strict=True)) <= 4 for d in served), det


@pytest.mark.skipif(HAS_BF16, reason="this CPU computes bf16")
def test_bf16_is_refused_by_the_builder_on_this_cpu(model, tmp_path):
    from focoos.builder import RepositoryBuilder
    from focoos.builder.repository import RepositoryError

    with pytest.raises(RepositoryError, match=r"bf16 needs a CPU with avx512_bf16 or amx_bf16.*computes fp32"):
        RepositoryBuilder(tmp_path / "repo").add(model, name="b", target="embedded", precision="bf16")
    assert not (tmp_path / "repo" / "b").exists()


def test_openvino_precisions_are_refused_where_triton_runs_onnxruntime(model, tmp_path):
    from focoos.builder import RepositoryBuilder
    from focoos.builder.repository import RepositoryError

    for target in ("cpu", "gpu"):
        with pytest.raises(RepositoryError, match="bf16 is served by openvino, which runs only in the python backend "
                                                  f"of target embedded: target {target}"):
            RepositoryBuilder(tmp_path / "repo").add(model, runtime_type=RuntimeType.ONNX_CPU, target=target,
                                                     precision="bf16")


@pytest.mark.skipif(HAS_BF16, reason="this CPU computes bf16")
@pytest.mark.slow
def test_bf16_step_refuses_to_load_on_this_cpu(repository, tmp_path):
    """A bf16 network step copied to a CPU without bf16: OpenVINO would compute f32, so the load fails, saying why."""
    from focoos.builder import TritonServer
    from focoos.builder.configs import CONFIG_FILE, read_config, to_pbtxt
    from focoos.builder.server import TritonServerError

    step = shutil.copytree(repository / "ov_model", tmp_path / "repo" / "ov_model")
    config = read_config(step)
    config.parameters["openvino_config"].string_value = json.dumps(openvino_config("bf16"))
    (step / CONFIG_FILE).write_text(to_pbtxt(config))
    with pytest.raises(TritonServerError, match="OpenVINO computes f32, not bf16, on this CPU"):
        TritonServer(tmp_path / "repo", startup_timeout_s=60).start()


def test_export_optimisation_keeps_outputs_and_standard_ops(model, tmp_path):
    import onnx

    from focoos.infer.runtimes import OnnxRuntime, OpenVinoRuntime
    from focoos.processing import preprocess_images

    paths = {}
    for optimized in (False, True):
        exported = model.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=tmp_path / str(optimized),
                                simplify_onnx=optimized, dynamic_axes=False)
        paths[optimized] = exported.model_path
        assert json.loads((exported.model_path.parent / "export.json").read_text())["optimized"] is optimized
    plain, optimized = (onnx.load(str(paths[o])).graph for o in (False, True))
    assert len(optimized.node) < 0.7 * len(plain.node)
    assert {node.domain for node in optimized.node} <= {"", "ai.onnx"}  # standard ops: any provider, OpenVINO
    assert [o.name for o in optimized.output] == [o.name for o in plain.output]
    batch = preprocess_images(canvases(2, seed=5), model.model_info.input_hw)[:1]
    reference = OnnxRuntime(paths[False])(batch)
    for outputs in (OnnxRuntime(paths[True])(batch), OpenVinoRuntime(paths[True])(batch)):
        for name, value in reference.items():
            np.testing.assert_allclose(outputs[name], value, atol=1e-4, rtol=1e-4)
