"""Rule 3 for keypoints: rtmo-s-coco, loaded from a Focoos-trained folder with its synthetic weights, finds the
same people (boxes, scores, 17 keypoints) eagerly and served by a real tritonserver through the ensemble's
KEYPOINTS output, at the exported graph's size (256 here). Exported runtimes (ONNX Runtime, TorchScript) are
held to eager inference, keypoints included, by tests/test_family_parity.py's rtmo case."""

from __future__ import annotations

import warnings

import pytest
from focoos.client import TritonInferModel

from focoos import ModelManager, NoWeightsWarning, RuntimeType
from focoos.processing import encode_image
from focoos.processing.image import load_image
from tests import focoos_reference as ref
from tests.parity import assert_same_detections
from tests.test_focoos_checkpoints import write_focoos_folder

NAME = "rtmo-s-coco"
SIZE = 256
# Measured with the synthetic weights: 22 and 6 people above it, the nearest score 5e-4 away from it.
THRESHOLD = 0.58
IMAGES = [load_image(ref.probe_image(i)) for i in range(2)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = write_focoos_folder(NAME, tmp_path_factory.mktemp("runs") / NAME)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)
        return ModelManager.get(str(folder), im_size=SIZE, device="cpu")


@pytest.fixture(scope="module")
def local(model):
    return model.infer(IMAGES, threshold=THRESHOLD)


def test_local_people_carry_keypoints(local):
    for result in local:
        assert len(result.detections) >= 1
        assert all(len(d.keypoints) == 17 and all(len(p) == 3 for p in d.keypoints) for d in result.detections)


@pytest.fixture(scope="module")
def server(model, serve_repository):
    return serve_repository({NAME: (model, RuntimeType.ONNX_CPU)}, max_batch_size=2)


def test_served_keypoints_equal_local(server, model, local):
    with TritonInferModel(server.grpc_url, NAME) as client:
        served = client.infer([encode_image(IMAGES[0], ".png"), IMAGES[1]], threshold=THRESHOLD, annotate=True)
        assert client.task == "keypoint"
        assert [list(pair) for pair in client.info.skeleton] == model.model_info.config["skeleton"]
    for image, a, b in zip(IMAGES, served, local, strict=True):
        assert all(d.keypoints is not None for d in a.detections)
        assert_same_detections(a, b)  # boxes 1 px, scores 1e-3, keypoints 1 px and their scores 1e-3
        assert a.image.shape == image.shape and (a.image != image).any()
    drawn = model.infer(IMAGES[1], threshold=THRESHOLD, annotate=True).image
    assert (drawn == served[1].image).mean() > 0.99  # the same skeletons, up to a pixel's antialiasing
