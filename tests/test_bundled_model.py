"""The detector that ships with the package: real weights, recorded metrics, real detections on held-out digits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from focoos import ModelManager, ModelRegistry, NoWeightsWarning
from focoos.data.digits import load_mnist_digits, make_canvas, split_by_class
from focoos.model_registry import REGISTRY_DIR

NAME = "fai-detr-n-digits"


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)  # it has weights: loading must not warn
        return ModelManager.get(NAME, device="cpu")


def test_registry_entry_records_weights_and_metrics():
    info = ModelRegistry.get_model_info(NAME)
    weights = REGISTRY_DIR / info.weights_uri
    assert weights.is_file() and weights.stat().st_size < 15e6
    assert info.weights_sha256 and info.val_metrics["bbox/AP"] > 30
    assert info.classes == [str(i) for i in range(10)] and info.val_dataset.startswith("digits")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_finds_held_out_digits(model):
    """Canvases of validation digits with a seed training never used: most digits found, few false ones."""
    digits, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    rng = np.random.default_rng(2024)
    found = total = false = 0
    for _ in range(8):
        canvas, objects = make_canvas(rng, digits, labels, val_pool, 256, num_digits=(2, 5), scale=(1.5, 3.0))
        dets = model.infer(canvas, threshold=0.5).detections
        matched = set()
        for box, label in objects:
            total += 1
            hit = next((i for i, d in enumerate(dets) if i not in matched and d.label == str(label)
                        and _iou(np.array(d.bbox, float), np.array(box, float)) >= 0.5), None)
            if hit is not None:
                matched.add(hit)
                found += 1
        false += len(dets) - len(matched)
    assert found / total >= 0.6, (found, total)
    assert false <= total, (false, total)


def test_bundled_classifier_reads_held_out_digits():
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)
        classifier = ModelManager.get("fai-cls-n-digits", device="cpu")
    assert classifier.model_info.val_metrics["classification/top1"] > 90
    digits, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    picked = val_pool[:: max(1, len(val_pool) // 100)][:100]
    results = classifier.infer([digits[i] for i in picked], threshold=0.0, top_k=1)
    correct = sum(r.detections[0].label == str(labels[i]) for r, i in zip(results, picked, strict=True))
    assert correct / len(picked) >= 0.9, correct


def test_no_stacked_boxes_on_the_demo_canvases(model):
    """What `focoos demo` shows: at most one same-class pair of boxes with IoU > 0.7 over the demo threshold
    per 10 canvases (an undertrained one-to-one matcher stacks two or three boxes on one digit)."""
    from focoos.samples import digit_canvases

    canvases = list(digit_canvases(count=20).values())
    pairs = 0
    for det in model.infer(canvases, threshold=0.5):
        boxes = [(d.cls_id, np.array(d.bbox, float)) for d in det.detections]
        pairs += sum(a[0] == b[0] and _iou(a[1], b[1]) > 0.7 for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert pairs <= len(canvases) // 10, pairs
