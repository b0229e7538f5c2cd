"""Turn raw network outputs into detections in original-image pixels, and pad them for Triton."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .errors import InvalidInputError
from .masks import encode_mask, mask_box

DEFAULT_TOP_K = 300
MASK_THRESHOLD = 0.5
# Detections kept per image when the model's config sets no top_k.
TASK_TOP_K = {"detection": 300, "classification": 5, "instseg": 100, "semseg": 150}


class DetectionArrays(NamedTuple):
    """Detections of one image: boxes [N, 4] xyxy pixels (None for classification), scores [N], classes [N],
    and for segmentation the masks: PNG bytes of each binary mask cropped to its box (see masks.py)."""

    boxes: np.ndarray | None
    scores: np.ndarray
    classes: np.ndarray
    masks: list[bytes] | None = None


def validate_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"threshold must be a number in [0, 1], got {threshold!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"threshold must be in [0, 1], got {value}")
    return value


def _validate_top_k(top_k: int) -> int:
    if int(top_k) < 1:
        raise InvalidInputError(f"top_k must be at least 1, got {top_k}")
    return int(top_k)


def postprocess_detr(
    boxes: np.ndarray,
    scores: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = 0.5,
    top_k: int = DEFAULT_TOP_K,
) -> list[DetectionArrays]:
    """DETR outputs -> detections per image.

    boxes: [B, Q, 4] xyxy normalised to the network input; scores: [B, Q, C] sigmoided.
    Top-k over all query x class pairs (a query may yield several classes), then the threshold,
    then boxes scaled to each original image, clipped to it.
    """
    threshold, top_k = validate_threshold(threshold), _validate_top_k(top_k)
    batch, num_queries, num_classes = scores.shape
    if boxes.shape != (batch, num_queries, 4) or len(original_hw) != batch:
        raise InvalidInputError(
            f"boxes {boxes.shape}, scores {scores.shape} and {len(original_hw)} image sizes do not match"
        )
    flat = scores.reshape(batch, -1)  # [B, Q*C]
    k = min(top_k, flat.shape[1])
    results = []
    for b, (height, width) in enumerate(original_hw):
        top = np.argpartition(-flat[b], k - 1)[:k] if k < flat.shape[1] else np.arange(flat.shape[1])
        top = top[np.argsort(-flat[b, top], kind="stable")]
        top = top[flat[b, top] > threshold]
        query, cls = top // num_classes, top % num_classes
        scale = np.array([width, height, width, height], dtype=np.float32)
        xyxy = np.clip(boxes[b, query].astype(np.float32) * scale, 0, scale)  # [N, 4]
        results.append(DetectionArrays(xyxy, flat[b, top].astype(np.float32), cls.astype(np.int64)))
    return results


def postprocess_classification(
    logits: np.ndarray, threshold: float = 0.5, top_k: int = 5
) -> list[DetectionArrays]:
    """Multi-label classification: sigmoid, classes over the threshold, best first, at most top_k."""
    threshold, top_k = validate_threshold(threshold), _validate_top_k(top_k)
    probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))  # [B, C]
    results = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:top_k]
        order = order[row[order] > threshold]
        results.append(DetectionArrays(None, row[order], order.astype(np.int64)))
    return results


def _check_mask_outputs(logits: np.ndarray, masks: np.ndarray, original_hw: list[tuple[int, int]]) -> None:
    if logits.ndim != 3 or masks.ndim != 4 or masks.shape[:2] != logits.shape[:2] or len(original_hw) != len(logits):
        raise InvalidInputError(
            f"logits {logits.shape}, masks {masks.shape} and {len(original_hw)} image sizes do not match"
        )


def _upsample(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a [h, w] map to the original image (half-pixel centres, as torch align_corners=False)."""
    return cv2.resize(prob.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _crop_arrays(boxes: list, scores: list, classes: list, masks: list) -> DetectionArrays:
    return DetectionArrays(
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray(classes, dtype=np.int64),
        masks,
    )


def postprocess_instance(
    logits: np.ndarray,
    masks: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = 0.5,
    top_k: int = 100,
    mask_threshold: float = MASK_THRESHOLD,
    use_mask_score: bool = True,
) -> list[DetectionArrays]:
    """MaskFormer instance outputs -> one detection per query that survives, with its mask.

    logits [B, Q, C] class probabilities (no-object dropped); masks [B, Q, h, w] mask probabilities.
    Score = best class probability x (when use_mask_score) the mean mask probability inside the
    binary mask; the best-scoring queries over the threshold are resized to the original image,
    binarised, dropped when they cover <= 1 pixel, and boxed from the mask.
    """
    threshold, top_k = validate_threshold(threshold), _validate_top_k(top_k)
    _check_mask_outputs(logits, masks, original_hw)
    results = []
    for b, (height, width) in enumerate(original_hw):
        classes = logits[b].argmax(-1)
        scores = logits[b].max(-1).astype(np.float32)  # [Q]
        if use_mask_score:
            binary = masks[b] > mask_threshold
            inside = binary.sum(axis=(1, 2))
            scores = scores * (masks[b] * binary).sum(axis=(1, 2)) / np.maximum(inside, 1)
        order = np.argsort(-scores, kind="stable")
        kept_boxes, kept_scores, kept_classes, kept_masks = [], [], [], []
        for q in order[scores[order] > threshold]:
            full = _upsample(masks[b, q], height, width) > mask_threshold
            box = mask_box(full)
            if box is None or full.sum() <= 1:
                continue
            x1, y1, x2, y2 = box
            kept_boxes.append(box)
            kept_scores.append(scores[q])
            kept_classes.append(classes[q])
            kept_masks.append(encode_mask(full[y1:y2, x1:x2]))
            if len(kept_scores) == top_k:
                break
        results.append(_crop_arrays(kept_boxes, kept_scores, kept_classes, kept_masks))
    return results


def postprocess_semantic(
    logits: np.ndarray,
    masks: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = 0.0,
    top_k: int = 150,
) -> list[DetectionArrays]:
    """MaskFormer semantic outputs -> one detection per class present, its mask the class's pixels.

    Per-pixel class scores are sum_q p(class | q) * mask_q(pixel) (Mask2Former's semantic inference),
    normalised over classes. Only the classes that win at least one pixel at the network's mask
    resolution are resized to the original image (a 1280x720 map of 150 classes would be ~550 MB),
    where the per-pixel argmax gives the label map. A class's score is its mean probability over
    its pixels; classes at or under the threshold are dropped (their pixels stay unlabelled), so at
    threshold 0 every pixel is labelled. The masks are disjoint: `masks.label_map` rebuilds the
    label map from the detections.
    """
    threshold, top_k = validate_threshold(threshold), _validate_top_k(top_k)
    _check_mask_outputs(logits, masks, original_hw)
    results = []
    for b, (height, width) in enumerate(original_hw):
        seg = np.einsum("qc,qhw->chw", logits[b].astype(np.float32), masks[b].astype(np.float32))
        seg = seg / np.maximum(seg.sum(axis=0, keepdims=True), 1e-6)  # [C, h, w], sums to 1 per pixel
        present = np.unique(seg.argmax(axis=0))
        scores_full = np.stack([_upsample(seg[c], height, width) for c in present])  # [P, H, W]
        winner = scores_full.argmax(axis=0)
        candidates = []
        for i, cls in enumerate(present):
            region = winner == i
            if not region.any():
                continue
            score = float(scores_full[i][region].mean())
            if score > threshold:
                candidates.append((score, int(cls), region))
        candidates.sort(key=lambda c: -c[0])
        kept_boxes, kept_scores, kept_classes, kept_masks = [], [], [], []
        for score, cls, region in candidates[:top_k]:
            x1, y1, x2, y2 = box = mask_box(region)
            kept_boxes.append(box)
            kept_scores.append(score)
            kept_classes.append(cls)
            kept_masks.append(encode_mask(region[y1:y2, x1:x2]))
        results.append(_crop_arrays(kept_boxes, kept_scores, kept_classes, kept_masks))
    return results


def postprocess_task(
    task: str,
    outputs: dict[str, np.ndarray],
    original_hw: list[tuple[int, int]],
    threshold: float,
    top_k: int,
    mask_threshold: float = MASK_THRESHOLD,
) -> list[DetectionArrays]:
    """The one dispatch from task name to postprocessing, used locally and in the Triton step."""
    if task == "detection":
        return postprocess_detr(outputs["boxes"], outputs["logits"], original_hw, threshold, top_k)
    if task == "classification":
        return postprocess_classification(outputs["logits"], threshold, top_k)
    if task == "instseg":
        return postprocess_instance(outputs["logits"], outputs["masks"], original_hw, threshold, top_k, mask_threshold)
    if task == "semseg":
        return postprocess_semantic(outputs["logits"], outputs["masks"], original_hw, threshold, top_k)
    raise InvalidInputError(f"no postprocessing for task {task!r}")


def pad_masks(results: list[DetectionArrays], top_k: int) -> np.ndarray:
    """MASKS for Triton: object array [B, K] of PNG bytes, b"" where a row has fewer than K detections."""
    out = np.full((len(results), top_k), b"", dtype=object)
    for b, res in enumerate(results):
        for i, png in enumerate((res.masks or [])[:top_k]):
            out[b, i] = png
    return out


def pad_detections(
    results: list[DetectionArrays], top_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed-rank tensors for Triton: NUM_DETECTIONS [B,1], BOXES [B,K,4], SCORES [B,K], CLASSES [B,K]."""
    batch = len(results)
    num = np.zeros((batch, 1), dtype=np.int32)
    boxes = np.zeros((batch, top_k, 4), dtype=np.float32)
    scores = np.zeros((batch, top_k), dtype=np.float32)
    classes = np.full((batch, top_k), -1, dtype=np.int32)
    for b, res in enumerate(results):
        n = min(len(res.scores), top_k)
        num[b, 0] = n
        scores[b, :n] = res.scores[:n]
        classes[b, :n] = res.classes[:n]
        if res.boxes is not None:
            boxes[b, :n] = res.boxes[:n]
    return num, boxes, scores, classes


def unpad_detections(
    num: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    with_boxes: bool = True,
    masks: np.ndarray | None = None,
) -> list[DetectionArrays]:
    """Inverse of pad_detections (and pad_masks when `masks` is given)."""
    out = []
    for b in range(num.shape[0]):
        n = int(num[b].reshape(-1)[0])
        out.append(
            DetectionArrays(
                boxes[b, :n].astype(np.float32) if with_boxes else None,
                scores[b, :n].astype(np.float32),
                classes[b, :n].astype(np.int64),
                None if masks is None else [bytes(m) for m in masks[b, :n]],
            )
        )
    return out
