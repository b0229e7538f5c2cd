"""Serving facts defined once: a model whose config leaves them out answers alike locally and served."""

from __future__ import annotations

import pytest
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.builder.configs import parse_pbtxt
from focoos.client import TritonInferModel

from focoos import RuntimeType
from focoos.infer.pipeline import model_top_k
from focoos.models import family_spec
from tests.conftest import make_scene, quiet_get, small_detr_info
from tests.parity import assert_same_detections

QUERIES = 100  # x 3 classes: 300 candidates at threshold 0, more than every default cut but detection's
IMAGES = [make_scene(240, 320, seed=1), make_scene(97, 203, seed=3)]


def _detr_without_top_k():
    info = small_detr_info("tiny-detr-no-top-k")
    info.config = {k: v for k, v in info.config.items() if k != "top_k"} | {"num_queries": QUERIES}
    return quiet_get(info.name, model_info=info, device="cpu")


def _params(root, name: str) -> dict[str, str]:
    config = parse_pbtxt((root / name / "config.pbtxt").read_text())
    return {k: v.string_value for k, v in config.parameters.items()}


@pytest.fixture(scope="module")
def served(small_cls, tmp_path_factory):
    detr = _detr_without_top_k()
    assert "top_k" not in detr.config and "top_k" not in small_cls.config
    root = tmp_path_factory.mktemp("repository")
    repo = RepositoryBuilder(root)
    for name, model in (("det", detr), ("cls", small_cls)):
        repo.add(model, runtime_type=RuntimeType.ONNX_CPU, name=name, target="embedded", max_batch_size=2,
                 preprocess_instances=1, postprocess_instances=1)
    with TritonServer(root) as server:
        yield server, {"det": detr, "cls": small_cls}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["det", "cls"])
def test_model_without_top_k_answers_alike_locally_and_served(served, name):
    server, models = served
    info = models[name].model_info
    expected = family_spec("fai_detr").top_k if name == "det" else info.num_classes  # classification: every class
    with TritonInferModel(server.grpc_url, name) as client:
        assert client.info.top_k == expected == model_top_k(info)
        for image in IMAGES:
            local, remote = models[name].infer(image, threshold=0.0), client.infer(image, threshold=0.0)
            assert len(local.detections) > 100 if name == "det" else len(local.detections) == expected
            assert_same_detections(local, remote)


def test_builder_writes_the_local_top_k_for_the_postprocess_step_and_the_client(small_detr, tmp_path):
    assert "top_k" not in small_detr.config
    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="d")
    expected = str(model_top_k(small_detr.model_info))
    assert expected == str(family_spec("fai_detr").top_k)
    assert _params(tmp_path, "d")["top_k"] == expected == _params(tmp_path, "d_postprocess")["top_k"]


@pytest.mark.parametrize("name", ["fai-detr-n-digits", "fai-mf-n-digits-ins", "bisenetformer-n-digits-sem"])
def test_declared_outputs_are_the_networks_for_a_config_without_num_queries(name):
    """The dims the family spec declares (config.pbtxt's) are what its network returns with the family's defaults."""
    import torch

    from focoos import ModelRegistry
    from focoos.models import build_network

    info = ModelRegistry.get_model_info(name)
    info.config = {k: v for k, v in info.config.items() if k != "num_queries"}
    network = build_network(info).eval()
    with torch.inference_mode():
        outputs = network(torch.zeros(1, 3, *info.input_hw))
    declared = family_spec(info.model_family).outputs(info)
    assert list(declared) == list(network.output_names)
    for dims, output in zip(declared.values(), outputs, strict=True):
        assert len(dims) == output.ndim - 1
        assert all(d in (-1, got) for d, got in zip(dims, output.shape[1:], strict=True))


def test_every_infer_path_rejects_unknown_options(small_cls, tmp_path, scene):
    exported = small_cls.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=tmp_path / "e", device="cpu")
    for runner in (small_cls.infer, small_cls, exported.infer, exported):
        with pytest.raises(TypeError, match="topk"):
            runner(scene, threshold=0.1, topk=3)
        assert len(runner(scene, threshold=0.0, top_k=3).detections) == 3
