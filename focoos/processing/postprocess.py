"""Turn raw network outputs into detections in original-image pixels, and pad them for Triton."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import InvalidInputError

DEFAULT_TOP_K = 300


class DetectionArrays(NamedTuple):
    """Detections of one image: boxes [N, 4] xyxy pixels (None for classification), scores [N], classes [N]."""

    boxes: np.ndarray | None
    scores: np.ndarray
    classes: np.ndarray


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
    num: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, with_boxes: bool = True
) -> list[DetectionArrays]:
    """Inverse of pad_detections."""
    out = []
    for b in range(num.shape[0]):
        n = int(num[b].reshape(-1)[0])
        out.append(
            DetectionArrays(
                boxes[b, :n].astype(np.float32) if with_boxes else None,
                scores[b, :n].astype(np.float32),
                classes[b, :n].astype(np.int64),
            )
        )
    return out
