"""Segmentation without a server: mask encoding, numpy postprocessing, the two families, export parity."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import torch

from focoos import RuntimeType
from focoos.errors import FocoosError
from focoos.ports import FocoosDetections
from focoos.processing import (
    InvalidInputError,
    decode_mask,
    encode_mask,
    label_map,
    mask_box,
    paste_mask,
    postprocess_instance,
    postprocess_semantic,
)
from tests.conftest import make_scene, quiet_get

SEG_MODELS = ["fai-mf-m-coco-ins", "bisenetformer-m-ade"]


def sharpen(model) -> None:
    """Untrained heads give mask probabilities near 0.5 everywhere; scaling the last layers makes
    masks decisive (so runtimes can be compared pixel by pixel) without changing the architecture."""
    heads = model.model.head.predictor.forward_prediction_heads  # Focoos' layout, both families
    with torch.no_grad():
        heads.mask_classifier.layers[-1].weight.mul_(30)
        heads.classifier.weight.mul_(10)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def assert_same_masks(a: FocoosDetections, b: FocoosDetections, image_hw: tuple[int, int]) -> None:
    """Same detections in the same order, each mask with IoU >= 0.99 or at most two pixels apart (a pixel whose
    probability sits on the mask threshold may fall either side between runtimes: on a 90-pixel mask one such
    pixel is IoU 0.989)."""
    assert [d.cls_id for d in a.detections] == [d.cls_id for d in b.detections]
    assert np.allclose(a.confidence, b.confidence, atol=1e-3)
    for ma, mb in zip(a.masks(image_hw), b.masks(image_hw), strict=True):
        assert mask_iou(ma, mb) >= 0.99 or np.logical_xor(ma, mb).sum() <= 2, (mask_iou(ma, mb), ma.sum())


def blob_outputs() -> tuple[np.ndarray, np.ndarray]:
    """Two confident queries (a square of class 1 and a disc of class 0) and one weak query."""
    masks = np.full((1, 3, 16, 24), 0.02, np.float32)
    masks[0, 0, 2:8, 2:8] = 0.98
    yy, xx = np.mgrid[0:16, 0:24]
    masks[0, 1][(yy - 10) ** 2 + (xx - 16) ** 2 <= 9] = 0.95
    masks[0, 2, 12:14, 0:3] = 0.6
    logits = np.array([[[0.05, 0.9], [0.8, 0.1], [0.3, 0.2]]], np.float32)
    return logits, masks


def test_mask_codec_round_trip_and_base64():
    mask = np.zeros((7, 9), bool)
    mask[1:5, 2:8] = True
    mask[3, 3] = False
    png = encode_mask(mask)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_mask(png), mask)
    assert np.array_equal(decode_mask(base64.b64encode(png).decode()), mask)
    with pytest.raises(InvalidInputError, match="base64"):
        decode_mask("not base64!")
    with pytest.raises(InvalidInputError, match="PNG"):
        decode_mask(b"plain bytes")


def test_mask_box_and_paste_invert_a_crop():
    full = np.zeros((20, 30), bool)
    full[4:9, 10:21] = True
    box = mask_box(full)
    assert box == (10, 4, 21, 9)  # pixel edges: x2, y2 are one past the last pixel
    x1, y1, x2, y2 = box
    assert np.array_equal(paste_mask(full[y1:y2, x1:x2], box, (20, 30)), full)
    assert mask_box(np.zeros((3, 3), bool)) is None


def test_instance_postprocess_scores_boxes_and_masks():
    logits, masks = blob_outputs()
    (res,) = postprocess_instance(logits, masks, [(64, 96)], threshold=0.5, use_mask_score=True)
    assert res.classes.tolist() == [1, 0]  # the weak query is under the threshold
    # score = class prob x mean mask prob inside the binary mask (Focoos' use_mask_score)
    probability = cv2.resize(masks[0, 0], (96, 64), interpolation=cv2.INTER_LINEAR)  # at the image's size
    square = probability >= 0.5
    assert res.scores[0] == pytest.approx(0.9 * probability[square].mean(), abs=1e-4)
    assert tuple(res.boxes[0].astype(int)) == mask_box(square)
    assert np.array_equal(paste_mask(decode_mask(res.masks[0]), res.boxes[0], (64, 96)), square)
    (plain,) = postprocess_instance(logits, masks, [(64, 96)], threshold=0.5)
    assert plain.scores[0] == pytest.approx(0.9)  # without it: the class probability alone
    (top1,) = postprocess_instance(logits, masks, [(64, 96)], threshold=0.0, top_k=1)
    assert len(top1.scores) == 1 and top1.classes[0] == 1
    with pytest.raises(InvalidInputError, match="do not match"):
        postprocess_instance(logits, masks[:, :2], [(64, 96)])


def test_semantic_postprocess_is_a_disjoint_label_map():
    logits, masks = blob_outputs()
    (res,) = postprocess_semantic(logits, masks, [(32, 48)], threshold=0.0)
    full = [paste_mask(decode_mask(m), b, (32, 48)) for m, b in zip(res.masks, res.boxes, strict=True)]
    assert (np.sum(full, axis=0) <= 1).all()  # disjoint regions
    rebuilt = label_map(res.boxes, res.masks, res.classes, (32, 48))
    # Focoos' predict_all_pixels: each pixel goes to the query with the highest score x mask probability
    up = np.stack([cv2.resize(m, (48, 32), interpolation=cv2.INTER_LINEAR) for m in masks[0]])
    winner = np.argmax(logits[0].max(-1)[:, None, None] * up, axis=0)
    reference = logits[0].argmax(-1)[winner]
    assert (rebuilt == reference).mean() > 0.99
    assert (rebuilt != 255).all()  # threshold 0 labels every pixel
    assert ((rebuilt == 1)[4:12, 4:12]).all()  # the square of class 1, upsampled x2


def test_focoos_detections_masks_supervision_round_trip():
    sv = pytest.importorskip("supervision")
    logits, masks = blob_outputs()
    (res,) = postprocess_instance(logits, masks, [(64, 96)], threshold=0.5)
    from focoos.results import to_focoos_detections

    dets = to_focoos_detections(res, ["disc", "square"])
    full = dets.masks((64, 96))
    assert full.shape == (2, 64, 96) and full[0].sum() > 0
    converted = dets.to_supervision(image_hw=(64, 96))
    assert isinstance(converted, sv.Detections) and np.array_equal(converted.mask, full)
    back = FocoosDetections.from_supervision(converted, ["disc", "square"])
    assert [d.mask for d in back.detections] == [d.mask for d in dets.detections]
    assert [d.bbox for d in back.detections] == [d.bbox for d in dets.detections]


@pytest.mark.parametrize("name", SEG_MODELS)
def test_segmentation_model_infers_with_masks_and_annotates(name):
    model = quiet_get(name, im_size=128, device="cpu")
    sharpen(model)
    image = make_scene(120, 160, seed=5)
    det = model.infer(image, threshold=0.0, annotate=True)
    assert len(det) >= 1
    for d in det.detections:
        crop = decode_mask(d.mask)
        assert crop.shape == (d.bbox[3] - d.bbox[1], d.bbox[2] - d.bbox[0])
        assert crop.any()
    assert det.image.shape == image.shape and not np.array_equal(det.image, image)
    if model.task.value == "semseg":
        assert det.label_map((120, 160)).shape == (120, 160)


def test_fai_mf_training_outputs_follow_the_set_loss_contract():
    model = quiet_get("fai-mf-s-coco-ins", im_size=96, device="cpu")
    network = model.model.train()
    out = network(torch.randint(0, 255, (2, 3, 96, 128), dtype=torch.uint8))
    assert out["pred_logits"].shape == (2, 100, 81)
    assert out["pred_masks"].shape == (2, 100, 24, 32)
    assert len(out["aux_outputs"]) == 6  # the initial prediction and five of the six decoder layers
    network.eval()


def test_bisenetformer_does_not_do_instance_segmentation():
    from focoos import ModelInfo

    fields = {**quiet_get("bisenetformer-s-ade", im_size=64).model_info.model_dump(), "task": "instseg"}
    with pytest.raises(FocoosError, match="does not do task 'instseg'"):
        quiet_get("x", model_info=ModelInfo.validated("test", **fields))


@pytest.mark.parametrize("name", SEG_MODELS)
@pytest.mark.parametrize("runtime", [RuntimeType.ONNX_CPU])  # TorchScript: tests/test_family_parity.py
def test_exported_segmentation_equals_eager(name, runtime, tmp_path):
    model = quiet_get(name, im_size=128, device="cpu")
    sharpen(model)
    exported = model.export(runtime, out_dir=tmp_path / "export")
    images = [make_scene(120, 160, seed=6), make_scene(90, 70, seed=7)]
    # the exported graph takes im_size: eager inference at that size is what it must equal
    for image, local, served in zip(images, model.infer(images, threshold=0.0, image_size=128),
                                    exported.infer(images, threshold=0.0), strict=True):
        assert_same_masks(local, served, image.shape[:2])
