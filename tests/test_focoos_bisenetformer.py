"""BiSeNetFormer against Focoos 0.25: recorded probe outputs and detections, ONNX export (the state-dict layout
of every BiSeNetFormer manifest is in tests/test_focoos_families.py).

Tolerances (the recorded probe was run by Focoos in float32 on CPU):
- logits are stored in float32: only summation-order noise separates us (measured < 1e-7), so 1e-5
  (about 1/600 of the class probabilities, which are ~6e-3 under synthetic weights).
- masks are stored in float16: rounding a value in [0.5, 1) costs up to 2.44e-4 (half an fp16 step),
  so 3e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests import family_checks as checks  # noqa: E402
from tests import focoos_reference as ref  # noqa: E402

PROBE = "bisenetformer-s-ade"
LOGITS_ATOL = 1e-5
MASKS_ATOL = 3e-4
DETECTION_THRESHOLD = 1e-4  # what the recording passed to Focoos' infer (0 means "config default" there)


@pytest.fixture(scope="module")
def probe_network():
    return ref.synthetic_network(PROBE)


def _image(index: int) -> np.ndarray:
    """The probe image as RGB uint8 HWC, at its own size (Focoos' segmentation preprocessing keeps it)."""
    from PIL import Image

    from focoos.processing.preprocess import preprocess_images

    rgb = np.asarray(Image.open(ref.probe_image(index)).convert("RGB"))
    return preprocess_images([rgb], rgb.shape[:2])  # [1, 3, H, W] uint8


@pytest.mark.parametrize("index", [0, 1])
def test_probe_outputs(probe_network, index: int) -> None:
    recorded = ref.probe_outputs(PROBE)
    batch = _image(index)
    np.testing.assert_array_equal(batch[:, :, ::4, ::4].astype(np.float32), recorded[f"image{index}_input"])
    masks, logits = checks.eager(probe_network, batch)
    height, width = batch.shape[2:]
    assert masks.shape == (1, 100, -(-height // 8), -(-width // 8))
    np.testing.assert_allclose(logits.numpy(), recorded[f"image{index}_out1"], rtol=0, atol=LOGITS_ATOL)
    queries = torch.from_numpy(recorded[f"image{index}_mask_queries"])
    full = checks.to_input_size(masks[:, queries], (height, width))[:, :, ::4, ::4]
    np.testing.assert_allclose(full.numpy(), recorded[f"image{index}_out0"].astype(np.float32), rtol=0, atol=MASKS_ATOL)


# -- detections

def _focoos_encoded(mask: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Focoos' mask form: box of inclusive pixel indices and mask[y1:y2, x1:x2] (drops the last row and
    column), pasted back at the image size so that it compares with a recorded mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    x1, y1, x2, y2 = int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])
    full = np.zeros_like(mask)
    full[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
    return [x1, y1, x2, y2], full


def _recorded(index: int, height: int, width: int) -> list[tuple[int, float, list[int], np.ndarray]]:
    from focoos.processing.masks import decode_mask, paste_mask

    return [
        (d["cls_id"], d["conf"], d["bbox"], paste_mask(decode_mask(d["mask"]), d["bbox"], (height, width)))
        for d in ref.probe_detections(PROBE)[index]
    ]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _assert_same_detections(ours: list[tuple[int, float, np.ndarray]], recorded: list) -> None:
    """As sets (scores nearly tie under synthetic weights): same count; each recorded detection has its own
    match with the same class, score within 1e-3, box within 1 px and mask IoU >= 0.99 (Focoos' encoding)."""
    assert len(ours) == len(recorded), f"{len(ours)} detections, Focoos recorded {len(recorded)}"
    free = list(range(len(ours)))
    for cls, conf, box, mask in recorded:
        candidates = [i for i in free if ours[i][0] == cls and abs(ours[i][1] - conf) <= 1e-3]
        assert candidates, f"no detection of class {cls} with score {conf:.5f}"
        encoded = {i: _focoos_encoded(ours[i][2]) for i in candidates}
        best = max(candidates, key=lambda i: _iou(encoded[i][1], mask))
        assert np.abs(np.subtract(encoded[best][0], box)).max() <= 1, (encoded[best][0], box)
        assert _iou(encoded[best][1], mask) >= 0.99, f"class {cls}: mask IoU {_iou(encoded[best][1], mask):.4f}"
        free.remove(best)


def _swapped_channels(batch: np.ndarray) -> np.ndarray:
    """The recorded detections are Focoos' answer for the image with red and blue swapped: its
    image_loader turns a PIL image into an array and then applies cv2 BGR->RGB to it. Their scores
    match our eager outputs on the swapped pixels to 1e-6 and not on the RGB ones (off by ~1e-3)."""
    return np.ascontiguousarray(batch[:, ::-1])


def _focoos_semantic_rule(logits: np.ndarray, masks: np.ndarray, threshold: float) -> list[tuple]:
    """Focoos' postprocess for predict_all_pixels=True, use_mask_score=False, on masks at input size:
    each pixel goes to the query maximising (best class score x mask); one detection per query that
    owns more than one pixel and scores above the threshold."""
    scores, labels = logits.max(-1), logits.argmax(-1)
    owner = (scores[:, None, None] * masks).argmax(0)
    out = []
    for q in range(logits.shape[0]):
        region = owner == q
        if region.sum() > 1 and scores[q] > threshold:
            out.append((int(labels[q]), float(scores[q]), region))
    return out


@pytest.mark.parametrize("index", [0, 1])
def test_probe_detections_with_focoos_rule(probe_network, index: int) -> None:
    """Our network's outputs under Focoos' own postprocessing rule give Focoos' recorded detections."""
    batch = _swapped_channels(_image(index))
    height, width = batch.shape[2:]
    masks, logits = checks.eager(probe_network, batch)
    full = checks.to_input_size(masks, (height, width))[0].numpy()
    ours = _focoos_semantic_rule(logits[0].numpy(), full, DETECTION_THRESHOLD)
    _assert_same_detections(ours, _recorded(index, height, width))


@pytest.mark.parametrize("index", [0, 1])
def test_probe_detections_postprocess_semantic(probe_network, index: int) -> None:
    from focoos.processing.masks import decode_mask, paste_mask
    from focoos.processing.postprocess import postprocess_semantic

    batch = _swapped_channels(_image(index))
    height, width = batch.shape[2:]
    masks, logits = checks.eager(probe_network, batch)
    top_k = int(ref.model_info(PROBE).config["top_k"])
    result = postprocess_semantic(logits.numpy(), masks.numpy(), [(height, width)], DETECTION_THRESHOLD, top_k)[0]
    ours = [
        (int(c), float(s), paste_mask(decode_mask(m), b, (height, width)))
        for b, s, c, m in zip(result.boxes, result.scores, result.classes, result.masks, strict=True)
    ]
    _assert_same_detections(ours, _recorded(index, height, width))


# -- training and export

def test_training_outputs_feed_the_maskformer_loss(probe_network) -> None:
    from focoos.training.losses.maskformer import MaskFormerCriterion

    network = ref.build_network(PROBE).train()
    images = torch.randint(0, 256, (2, 3, 96, 128), dtype=torch.uint8)
    out = network(images)
    layers = int(ref.model_info(PROBE).config["transformer_predictor_dec_layers"])
    assert out["pred_logits"].shape == (2, 100, 151) and out["pred_masks"].shape == (2, 100, 12, 16)
    assert len(out["aux_outputs"]) == layers
    targets = [{"labels": torch.tensor([3, 7]), "masks": torch.rand(2, 96, 128) > 0.5} for _ in range(2)]
    criterion = MaskFormerCriterion(150, num_points=256)
    losses = criterion(out, targets, 4.0)
    assert len(losses) == 3 * (layers + 1)
    sum(losses.values()).backward()
    assert network.head.predictor.query_feat.weight.grad is not None


@pytest.mark.slow
def test_onnx_export_dynamic(probe_network, tmp_path) -> None:
    gen = torch.Generator().manual_seed(0)
    example = torch.randint(0, 256, (2, 3, 256, 320), dtype=torch.uint8, generator=gen)
    session = checks.export_dynamic_onnx(probe_network, example, tmp_path / "bisenetformer.onnx")
    assert [o.name for o in session.get_outputs()] == ["masks", "logits"]
    for x in (example, torch.randint(0, 256, (1, 3, 200, 296), dtype=torch.uint8, generator=gen)):
        masks, logits = session.run(None, {"images": x.numpy()})
        ref_masks, ref_logits = checks.eager(probe_network, x.numpy())
        np.testing.assert_allclose(masks, ref_masks.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=0, atol=1e-5)
