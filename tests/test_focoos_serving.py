"""Rule 3 for Focoos' checkpoints: each probe, loaded from a Focoos-trained folder with its synthetic weights,
answers the same eagerly, exported (ONNX Runtime, TorchScript) and served by a real tritonserver.

Exported and served graphs take a fixed size (a smaller im_size here, to keep CPU time low); they are held
to our eager inference at that size. Focoos' eager segmentation runs at each image's own size instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from focoos.client import TritonInferModel

from focoos import ModelManager, NoWeightsWarning, RuntimeType
from focoos.processing import encode_image
from focoos.processing.image import load_image
from tests import focoos_reference as ref
from tests.parity import assert_same_detections
from tests.test_focoos_checkpoints import write_focoos_folder
from tests.test_segmentation import assert_same_masks

pytestmark = pytest.mark.slow
PROBES = [n for n in ref.supported(ref.PROBE_NAMES) if not n.startswith("rtmo")]  # keypoints: test_rtmo_serving
SERVE_SIZE = {"fai_detr": 320, "fai_cls": 224}  # segmentation families: 256
IMAGES = [load_image(ref.probe_image(i)) for i in range(2)]
# Segmenters are served at each image's own size, as eager runs them: half-size probes keep that cheap.
SERVED_IMAGES = [np.ascontiguousarray(image[::2, ::2]) for image in IMAGES]


def _threshold(model) -> float:
    # untrained-looking synthetic scores: a low threshold keeps many detections to compare
    return 0.0 if model.task.value in ("classification", "semseg") else 0.02


def assert_same(model, a, b, image) -> None:
    if model.task.value in ("instseg", "semseg"):
        assert_same_masks(a, b, image.shape[:2])
    else:
        assert_same_detections(a, b)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    built = {}
    for name in PROBES:
        folder = write_focoos_folder(name, tmp_path_factory.mktemp("runs") / name)
        size = SERVE_SIZE.get(ref.manifest(name)["model_info"]["model_family"], 256)
        with warnings.catch_warnings():
            warnings.simplefilter("error", NoWeightsWarning)
            built[name] = ModelManager.get(str(folder), im_size=size, device="cpu")
    return built


# TorchScript of every family is checked at a small size by tests/test_family_parity.py; ONNX here at full width.
@pytest.mark.parametrize("runtime", [RuntimeType.ONNX_CPU])
@pytest.mark.parametrize("name", PROBES)
def test_exported_probe_equals_eager(models, name, runtime, tmp_path):
    model = models[name]
    exported = model.export(runtime, out_dir=tmp_path / "export")
    threshold = _threshold(model)
    local = model.infer(IMAGES, threshold=threshold, image_size=model.model_info.input_hw)
    for image, a, b in zip(IMAGES, exported.infer(IMAGES, threshold=threshold), local, strict=True):
        assert len(b.detections) >= 1
        assert_same(model, a, b, image)


@pytest.fixture(scope="module")
def server(models, serve_repository):
    return serve_repository({name: (model, RuntimeType.ONNX_CPU) for name, model in models.items()}, max_batch_size=2)


@pytest.mark.parametrize("name", PROBES)
def test_served_probe_equals_eager(server, models, name):
    model = models[name]
    threshold = _threshold(model)
    with TritonInferModel(server.grpc_url, name) as client:
        served = client.infer([encode_image(SERVED_IMAGES[0], ".png"), SERVED_IMAGES[1]], threshold=threshold)
    local = model.infer(SERVED_IMAGES, threshold=threshold)  # the default call: served equals eager
    for image, a, b in zip(SERVED_IMAGES, served, local, strict=True):
        assert len(b.detections) >= 1
        assert_same(model, a, b, image)
    assert np.isfinite([d.conf for d in served[0].detections]).all()
