"""Reduced-scale JPEG decode in the served preprocess step: big photos decode at 1/2, 1/4 or 1/8 scale,
and the bundled detector's accuracy does not move (served within 0.5 AP of local inference at full decode).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from focoos.client import TritonInferModel
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from focoos import RuntimeType
from focoos.data.digits import load_mnist_digits, make_canvas, split_by_class
from focoos.processing import encode_image
from focoos.processing.image import decode_image, decode_image_for
from tests.conftest import quiet_get

DETECTOR = "fai-detr-n-digits"  # input 256x256
CANVASES = 40
UPSCALED = {"1080p": (1080, 1920), "4000x3000": (3000, 4000)}  # (h, w)
AP_TOLERANCE = 0.5


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(("image_hw", "input_hw", "decoded_hw"), [
    ((3000, 4000), (256, 256), (375, 500)),  # 1/8
    ((1080, 1920), (256, 256), (270, 480)),  # 1/4: 1/8 would be 135 rows, under the input
    ((1080, 1920), (640, 640), (1080, 1920)),  # not twice the input on both sides: full decode
    ((600, 800), (300, 300), (300, 400)),  # exactly twice: 1/2
])
def test_reduced_decode_covers_the_input_and_reports_the_full_size(image_hw, input_hw, decoded_hw):
    data = jpeg(np.random.default_rng(0).integers(0, 255, (*image_hw, 3), dtype=np.uint8))
    image, full_hw = decode_image_for(data, input_hw)
    assert image.shape[:2] == decoded_hw and full_hw == image_hw
    assert decode_image_for(data, None)[0].shape[:2] == image_hw
    png = encode_image(np.zeros((*image_hw, 3), np.uint8), ".png")
    assert decode_image_for(png, input_hw)[0].shape[:2] == image_hw  # only JPEG has a reduced decode


def coco_ap(ground_truth: list[list[tuple[list[float], int]]], detections: list, sizes_hw: list) -> float:
    """bbox AP (0-100) of the detections against the ground truth, by pycocotools."""
    images, annotations, results = [], [], []
    for image_id, (objects, dets, (height, width)) in enumerate(zip(ground_truth, detections, sizes_hw,
                                                                    strict=True)):
        images.append({"id": image_id, "height": height, "width": width})
        for box, cls in objects:
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cls, "iscrowd": 0,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
        for det in dets.detections:
            x0, y0, x1, y1 = det.bbox
            results.append({"image_id": image_id, "category_id": det.cls_id, "score": det.conf,
                            "bbox": [x0, y0, x1 - x0, y1 - y0]})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": i} for i in range(10)]}
    gt.createIndex()
    evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return 100 * float(evaluation.stats[0])


@pytest.fixture(scope="module")
def detector():
    return quiet_get(DETECTOR, device="cpu")


@pytest.fixture(scope="module")
def canvases():
    digits, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    rng = np.random.default_rng(77)
    return [make_canvas(rng, digits, labels, val_pool, 256, num_digits=(2, 5), scale=(1.5, 3.0))
            for _ in range(CANVASES)]


@pytest.mark.slow
def test_served_reduced_decode_keeps_the_bundled_detectors_ap(detector, canvases, serve_repository):
    server = serve_repository({"digits": (detector, RuntimeType.ONNX_CPU)})
    with TritonInferModel(server.grpc_url, "digits") as client:
        for size_name, (height, width) in UPSCALED.items():
            sy, sx = height / 256, width / 256
            photos = [jpeg(cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR))
                      for canvas, _ in canvases]
            truth = [[([x0 * sx, y0 * sy, x1 * sx, y1 * sy], cls) for (x0, y0, x1, y1), cls in objects]
                     for _, objects in canvases]
            assert decode_image_for(photos[0], detector.model_info.input_hw)[0].shape[0] < height  # reduced
            local = [detector.infer(decode_image(p), threshold=0.05) for p in photos]  # full decode
            served = [client.infer(p, threshold=0.05) for p in photos]
            sizes = [(height, width)] * len(photos)
            local_ap, served_ap = coco_ap(truth, local, sizes), coco_ap(truth, served, sizes)
            print(f"{size_name}: local full decode AP {local_ap:.2f}, served reduced decode AP {served_ap:.2f}")
            assert local_ap > 50, f"{size_name}: the bundled detector should find the digits (AP {local_ap:.1f})"
            assert abs(served_ap - local_ap) <= AP_TOLERANCE, (size_name, local_ap, served_ap)
