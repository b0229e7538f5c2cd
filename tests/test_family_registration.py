"""A family declared outside focoos (tests/toy_family: one package, no other file touched) is built,
trained against nothing, exported and served like the built-in ones, and answers alike everywhere."""

from __future__ import annotations

import pytest
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.client import TritonInferModel

from focoos import ModelFamily, ModelInfo, RuntimeType, Task
from focoos.models import families, family_spec
from tests import toy_family
from tests.conftest import make_scene, quiet_get
from tests.parity import assert_same_detections

IMAGES = [make_scene(120, 160, seed=1), make_scene(97, 203, seed=3)]


@pytest.fixture(scope="module")
def toy():
    info = ModelInfo(name="toy", model_family=toy_family.FAMILY.name, task=Task.DETECTION,
                     classes=["red", "green", "blue"], im_size=64, config={})
    return quiet_get(info.name, model_info=info, device="cpu")


def test_a_registered_family_is_known_everywhere(toy):
    assert families()["toy_detector"] is family_spec(ModelFamily("toy_detector")) is toy_family.FAMILY
    assert toy.model_info.model_family.value == "toy_detector"
    result = toy.infer(IMAGES[0], threshold=0.0)
    assert len(result.detections) == toy_family.NUM_QUERIES  # the family's top_k: every query


@pytest.mark.slow
def test_a_registered_family_exports_and_serves_alike(toy, tmp_path):
    exported = toy.export(runtime_type=RuntimeType.ONNX_CPU, out_dir=tmp_path / "export", device="cpu",
                          allow_random_weights=True)
    RepositoryBuilder(tmp_path / "repository").add(
        toy, runtime_type=RuntimeType.ONNX_CPU, target="embedded", max_batch_size=2, preprocess_instances=1,
        postprocess_instances=1, allow_random_weights=True)
    with TritonServer(tmp_path / "repository") as server, TritonInferModel(server.grpc_url, "toy") as client:
        for image in IMAGES:
            eager = toy.infer(image, threshold=0.0)
            assert_same_detections(eager, exported.infer(image, threshold=0.0))
            assert_same_detections(eager, client.infer(image, threshold=0.0))
