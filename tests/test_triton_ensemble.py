"""Repositories the builder writes, served by a real tritonserver and called with plain tritonclient.grpc."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from focoos.builder import RepositoryBuilder, TritonServer
from tritonclient.utils import InferenceServerException

from focoos import RuntimeType
from focoos.processing import DetectionArrays, encode_image, unpad_detections
from focoos.processing.transport import pack_images
from focoos.results import to_focoos_detections
from tests.conftest import make_scene
from tests.parity import assert_same_detections

pytestmark = pytest.mark.slow
IMAGES = [make_scene(240, 320, seed=1), make_scene(480, 360, seed=2), make_scene(97, 203, seed=3),
          make_scene(300, 300, seed=4)]
ALL_PAIRS = 150  # tiny DETR: 50 queries x 3 classes, so top-k keeps every pair and ties cannot reorder the cut


@pytest.fixture(scope="module")
def server(small_detr, small_cls, tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    repo = RepositoryBuilder(root)
    repo.add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="det_onnx", target="embedded", max_batch_size=4,
             top_k=ALL_PAIRS, preprocess_instances=1, postprocess_instances=1)
    repo.add(small_detr, runtime_type=RuntimeType.TORCHSCRIPT_32, name="det_ts", target="embedded",
             max_batch_size=4, top_k=ALL_PAIRS, preprocess_instances=1, postprocess_instances=1)
    repo.add(small_cls, runtime_type=RuntimeType.ONNX_CPU, name="cls", target="embedded", max_batch_size=4,
             preprocess_instances=1, postprocess_instances=1)
    with TritonServer(root) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with grpcclient.InferenceServerClient(server.grpc_url) as c:
        yield c


def _inputs(images: list) -> list[grpcclient.InferInput]:
    packed, shapes = pack_images(images)
    tensors = [grpcclient.InferInput("IMAGE", list(packed.shape), "UINT8")]
    tensors[0].set_data_from_numpy(packed)
    if shapes is not None:
        tensors.append(grpcclient.InferInput("IMAGE_SHAPE", list(shapes.shape), "INT32"))
        tensors[1].set_data_from_numpy(shapes)
    return tensors


def _call(client, model: str, images: list, with_boxes: bool = True, **parameters) -> list[DetectionArrays]:
    result = client.infer(model, _inputs(images), parameters=parameters or None)
    boxes = result.as_numpy("BOXES") if with_boxes else None
    return unpad_detections(result.as_numpy("NUM_DETECTIONS"), boxes, result.as_numpy("SCORES"),
                            result.as_numpy("CLASSES"), with_boxes=with_boxes)


@pytest.mark.parametrize("model", ["det_onnx", "det_ts"])
def test_ensemble_equals_local_inference_batch_1_and_4(client, small_detr, model):
    classes = small_detr.classes
    for image in IMAGES[:2]:
        (served,) = _call(client, model, [encode_image(image, ".png")], threshold=0.0)
        assert_same_detections(to_focoos_detections(served, classes), small_detr.infer(image, threshold=0.0))
    # batch 4 mixing encoded bytes and raw pixels
    batch = [encode_image(IMAGES[0], ".png"), IMAGES[1], IMAGES[2], encode_image(IMAGES[3], ".png")]
    served = _call(client, model, batch, threshold=0.0)
    local = small_detr.infer(IMAGES, threshold=0.0)
    for a, b in zip(served, local, strict=True):
        assert_same_detections(to_focoos_detections(a, classes), b)


def test_threshold_and_top_k_are_request_parameters(client, small_detr):
    local = small_detr.infer(IMAGES[0], threshold=0.0102)
    (served,) = _call(client, "det_onnx", [IMAGES[0]], threshold=0.0102)
    assert_same_detections(to_focoos_detections(served, small_detr.classes), local)
    (top3,) = _call(client, "det_onnx", [IMAGES[0]], threshold=0.0, top_k=3)
    assert len(top3.scores) == 3


def test_classification_ensemble(client, small_cls):
    (served,) = _call(client, "cls", [IMAGES[0]], with_boxes=False, threshold=0.0)
    assert_same_detections(to_focoos_detections(served, small_cls.classes), small_cls.infer(IMAGES[0], threshold=0.0))


def test_metadata_lets_a_client_discover_the_model(client):
    config = client.get_model_config("det_onnx", as_json=True)["config"]
    assert json.loads(config["parameters"]["classes"]["string_value"]) == ["red", "green", "blue"]
    assert config["parameters"]["task"]["string_value"] == "detection"


def _huge_png() -> bytes:
    data = bytearray(encode_image(np.zeros((1, 1, 3), np.uint8), ".png"))
    data[16:24] = (20000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def _raw(name: str, array: np.ndarray, dtype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return tensor


BAD_REQUESTS = {
    "corrupt bytes": (lambda: _inputs([b"\xff\xd8\xff garbage, not a jpeg"]), {}, "cannot decode"),
    "empty tensor": (lambda: [_raw("IMAGE", np.zeros((1, 0), np.uint8), "UINT8")], {}, ""),
    "wrong dtype": (lambda: [_raw("IMAGE", np.zeros((1, 8), np.float32), "FP32")], {}, "data-type"),
    "wrong rank": (lambda: [_raw("IMAGE", np.zeros((1, 2, 8), np.uint8), "UINT8")], {}, "shape"),
    "20000x20000 png": (lambda: _inputs([_huge_png()]), {}, "exceeds"),
    "20000x20000 raw": (
        lambda: [_raw("IMAGE", np.zeros((1, 12), np.uint8), "UINT8"),
                 _raw("IMAGE_SHAPE", np.array([[20000, 20000, 3]], np.int32), "INT32")],
        {}, "invalid raw image shape",
    ),
    "threshold above 1": (lambda: _inputs([IMAGES[0]]), {"threshold": 2.0}, "threshold must be in"),
    "top_k too large": (lambda: _inputs([IMAGES[0]]), {"top_k": 100000}, "top_k"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_invalid_argument_and_the_server_stays_ready(client, case):
    make_inputs, parameters, message = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as excinfo:
        client.infer("det_onnx", make_inputs(), parameters=parameters or None)
    assert excinfo.value.status() == "StatusCode.INVALID_ARGUMENT", excinfo.value
    assert message in excinfo.value.message()
    assert client.is_server_ready()
    assert len(_call(client, "det_onnx", [IMAGES[0]], threshold=0.0, top_k=2)[0].scores) == 2


def test_stage_metrics_are_exported(server, client):
    import urllib.request

    _call(client, "det_onnx", [IMAGES[0]])
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    assert 'focoos_stage_duration_us{model="det_onnx_preprocess",stage="preprocess"}' in text
    assert "nv_inference_request_success" in text
