"""Turn raw network outputs into detections in original-image pixels, and pad them for Triton."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from .errors import InvalidInputError
from .masks import encode_mask, mask_box
from .transport import BOXES, CLASSES, DEFAULT_THRESHOLD, KEYPOINTS, MASKS, NUM_DETECTIONS, SCORES, task_outputs

MASK_THRESHOLD = 0.5  # mask probability a pixel needs, when the config sets no mask_threshold
# Focoos' RTMOConfig defaults: candidates must score above score_thr; NMS drops boxes over nms_thr IoU.
KEYPOINT_SCORE_THR = 0.1
KEYPOINT_NMS_THR = 0.65


class DetectionArrays(NamedTuple):
    """Detections of one image: boxes [N, 4] xyxy pixels (None for classification), scores [N], classes [N],
    for segmentation the masks: PNG bytes of each binary mask cropped to its box (see masks.py), and for
    keypoints [N, K, 3]: x, y in pixels and the keypoint's visibility score."""

    boxes: np.ndarray | None
    scores: np.ndarray
    classes: np.ndarray
    masks: list[bytes] | None = None
    keypoints: np.ndarray | None = None


def validate_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"threshold must be a number in [0, 1], got {threshold!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"threshold must be in [0, 1], got {value}")
    return value


def _validate_top_k(top_k: int | None, candidates: int | None = None) -> int:
    """top_k as an int; None keeps every candidate."""
    if top_k is None:
        return max(1, int(candidates or 1))
    if int(top_k) < 1:
        raise InvalidInputError(f"top_k must be at least 1, got {top_k}")
    return int(top_k)


def postprocess_detr(
    boxes: np.ndarray,
    scores: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int | None = None,
    *,
    nms_iou: float | None = None,
) -> list[DetectionArrays]:
    """DETR outputs -> detections per image, as Focoos' DETR processor returns them.

    boxes: [B, Q, 4] xyxy normalised to the network input; scores: [B, Q, C] sigmoided.
    Top-k over all query x class pairs (a query may yield several classes), best first, then the
    threshold (strictly above), then boxes scaled to each original image and rounded to whole pixels.
    Like Focoos, boxes are not clipped: a box may extend past the image border.
    nms_iou (not a Focoos option, off unless a config sets it): drop a box that overlaps a better box of
    its class by more than this IoU, for small DETRs whose one-to-one matching is not converged.
    """
    threshold = validate_threshold(threshold)
    top_k = _validate_top_k(top_k, scores[0].size if scores.ndim == 3 else 1)
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
        xyxy = np.round(boxes[b, query].astype(np.float32) * scale)  # [N, 4], half to even as torch.round
        keep = _class_nms(xyxy, cls, nms_iou) if nms_iou is not None else slice(None)
        results.append(DetectionArrays(
            xyxy[keep].astype(np.float32), flat[b, top][keep].astype(np.float32), cls[keep].astype(np.int64)
        ))
    return results


def _class_nms(xyxy: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy per-class suppression of whole-pixel boxes already sorted best first: `nms` on
    boxes shifted apart by class (torchvision's batched_nms), so boxes of two classes never overlap. Shifts
    stay whole numbers far below 2**24, where float32 is exact."""
    if not len(xyxy):
        return np.zeros(0, dtype=np.int64)
    shift = classes.astype(np.float32)[:, None] * (float(np.abs(xyxy).max()) + 1.0)
    return nms(xyxy + shift, iou)


def nms(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy class-agnostic suppression of xyxy boxes sorted best first: a box goes when its
    IoU with a kept box exceeds `iou` (torchvision's nms). Degenerate boxes have area 0 and overlap nothing."""
    boxes = boxes.astype(np.float32)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    overlap = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9) > iou  # [N, N]
    suppressed = np.zeros(len(boxes), dtype=bool)
    kept = []
    for i in range(len(boxes)):
        if not suppressed[i]:
            kept.append(i)
            suppressed |= overlap[i]
    return np.asarray(kept, dtype=np.int64)


def postprocess_keypoints(
    boxes: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int | None = None,
    *,
    score_thr: float = KEYPOINT_SCORE_THR,
    nms_thr: float = KEYPOINT_NMS_THR,
) -> list[DetectionArrays]:
    """RTMO outputs -> people per image, as Focoos' RTMO model and processor return them.

    boxes [B, k, 4] xyxy and keypoints [B, k, K, 3] (x, y, visibility) normalised to the network input,
    scores [B, k, C] class probabilities; rows are the network's top candidates, best first. A row's score
    is its best class. Focoos keeps scores above score_thr, suppresses (NMS at nms_thr IoU, across classes),
    then keeps scores above the call's threshold (0: score_thr). Both filters drop only lower scores, so
    they run before the NMS here; at most top_k people, best first. Boxes are clipped to [0, max(h, w)] and
    keypoints to the image, then truncated to whole pixels, as Focoos does.
    """
    threshold = validate_threshold(threshold)
    top_k = _validate_top_k(top_k, scores.shape[1] if scores.ndim > 1 else 1)
    batch, rows = scores.shape[:2]
    if boxes.shape != (batch, rows, 4) or keypoints.shape[:2] != (batch, rows) or len(original_hw) != batch:
        raise InvalidInputError(
            f"boxes {boxes.shape}, scores {scores.shape}, keypoints {keypoints.shape} and {len(original_hw)} "
            "image sizes do not match"
        )
    floor = max(float(score_thr), threshold)  # a threshold of 0 leaves score_thr
    results = []
    for b, (height, width) in enumerate(original_hw):
        best, cls = scores[b].max(-1).astype(np.float32), scores[b].argmax(-1).astype(np.int64)
        order = np.argsort(-best, kind="stable")
        order = order[best[order] > floor]
        xyxy = boxes[b, order].astype(np.float32) * np.array([width, height, width, height], dtype=np.float32)
        keep = nms(xyxy, nms_thr)[:top_k]
        rows_kept = order[keep]
        points = keypoints[b, rows_kept].astype(np.float32)
        xy = points[..., :2] * np.array([width, height], dtype=np.float32)
        xy = np.floor(np.clip(xy, 0, np.array([width, height], dtype=np.float32)))
        results.append(DetectionArrays(
            np.floor(np.clip(xyxy[keep], 0, max(height, width))), best[rows_kept], cls[rows_kept],
            keypoints=np.concatenate([xy, points[..., 2:3]], -1),
        ))  # fmt: skip
    return results


def postprocess_classification(
    logits: np.ndarray, threshold: float = DEFAULT_THRESHOLD, top_k: int | None = None
) -> list[DetectionArrays]:
    """Multi-label classification: sigmoid, classes over the threshold, best first, at most top_k (default all)."""
    threshold = validate_threshold(threshold)
    top_k = _validate_top_k(top_k, logits.shape[-1])
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


# Output pixels upsampled at a time: what a mask costs in float32 temporaries stays bounded (16 MB each).
UPSAMPLE_STRIP_PIXELS = 1 << 22


def _taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output pixel along one axis: the two source pixels bilinear interpolation reads and the second
    one's weight (half-pixel centres, edges clamped: cv2.resize INTER_LINEAR, torch align_corners=False)."""
    pos = ((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5).astype(np.float32)
    low = np.floor(pos).astype(np.int64)
    weight = (pos - low).astype(np.float32)
    weight[(low < 0) | (low >= in_size - 1)] = 0.0
    low = np.clip(low, 0, in_size - 1)
    return low, np.minimum(low + 1, in_size - 1), weight


def _upsample_window(prob: np.ndarray, y_taps: tuple, x_taps: tuple, rows: slice, cols: slice) -> np.ndarray:
    """The bilinear upsampling of `prob` restricted to output rows x cols, without the rest of the image."""
    y_low, y_high, y_weight = (t[rows] for t in y_taps)
    x_low, x_high, x_weight = (t[cols] for t in x_taps)
    first = int(y_low[0])
    source = prob[first : int(y_high[-1]) + 1].astype(np.float32)
    across = source[:, x_low] * (1.0 - x_weight) + source[:, x_high] * x_weight  # [source rows, cols]
    out = across[y_low - first]
    out *= (1.0 - y_weight)[:, None]
    below = across[y_high - first]
    below *= y_weight[:, None]
    out += below
    return out


def _reach(taps: tuple, first: int, last: int) -> slice:
    """Output pixels whose interpolation reads a source pixel in [first, last]."""
    low, high, _ = taps
    hits = np.flatnonzero(((low >= first) & (low <= last)) | ((high >= first) & (high <= last)))
    return slice(int(hits[0]), int(hits[-1]) + 1)


def _instance_mask(
    prob: np.ndarray, y_taps: tuple, x_taps: tuple, mask_threshold: float
) -> tuple[tuple[int, int, int, int], np.ndarray, float] | None:
    """(box, cropped binary mask, mask probability summed inside it) of one query at the original size, or None
    when the mask is empty. A bilinear value never exceeds the source values it reads, so only the output
    pixels that read a source pixel >= mask_threshold are upsampled, a strip of rows at a time: time and memory
    follow the object, not the image, and a full-image mask costs a few bytes per pixel."""
    above = prob >= mask_threshold
    src_rows, src_cols = np.flatnonzero(above.any(axis=1)), np.flatnonzero(above.any(axis=0))
    if src_rows.size == 0:
        return None
    rows = _reach(y_taps, int(src_rows[0]), int(src_rows[-1]))
    cols = _reach(x_taps, int(src_cols[0]), int(src_cols[-1]))
    height, width = len(y_taps[0]), len(x_taps[0])
    binary = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    if 8 * binary.size > height * width:  # OpenCV resizes the whole image about 8x faster per pixel than numpy
        window = _upsample(prob, height, width)[rows, cols]
        np.greater_equal(window, mask_threshold, out=binary)
        inside = float(window[binary].sum(dtype=np.float64))
        del window
    else:
        step = max(1, UPSAMPLE_STRIP_PIXELS // binary.shape[1])
        inside = 0.0
        for top in range(rows.start, rows.stop, step):
            strip = _upsample_window(prob, y_taps, x_taps, slice(top, min(top + step, rows.stop)), cols)
            part = binary[top - rows.start : top - rows.start + strip.shape[0]]
            np.greater_equal(strip, mask_threshold, out=part)
            inside += float(strip[part].sum(dtype=np.float64))
    box = mask_box(binary)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return (x1 + cols.start, y1 + rows.start, x2 + cols.start, y2 + rows.start), binary[y1:y2, x1:x2], inside


def _crop_arrays(boxes: list, scores: list, classes: list, masks: list) -> DetectionArrays:
    return DetectionArrays(
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray(classes, dtype=np.int64),
        masks,
    )


def _query_scores(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best class probability and that class (first on ties, as torch max)."""
    logits = logits.astype(np.float32)
    return logits.max(-1), logits.argmax(-1).astype(np.int64)


def _mask_score(inside: float, count: int) -> float:
    """Focoos' mean mask probability inside the binary mask, with its 1e-3 scaling and 1e-5 epsilon."""
    return inside * 1e-3 / (count * 1e-3 + 1e-5)


def _over(score: float, threshold: float) -> bool:
    """Focoos filters `score > threshold` only when threshold > 0 (0 keeps every detection)."""
    return threshold <= 0 or score > threshold


# A detection as found: score, class, xyxy box (pixel edges) and the PNG of its mask cropped to the box. Masks
# are cropped and encoded as soon as found, so an image's detections never hold a full-size mask each.
Found = tuple[float, int, tuple[int, int, int, int], bytes]


def _sorted_arrays(found: list[Found], top_k: int) -> DetectionArrays:
    """Found detections -> DetectionArrays, best first (stable on ties), at most top_k."""
    found.sort(key=lambda item: -item[0])
    kept = found[:top_k]
    return _crop_arrays([f[2] for f in kept], [f[0] for f in kept], [f[1] for f in kept], [f[3] for f in kept])


# (one image's mask maps [Q, h, w], query scores, query classes, height, width, threshold) -> detections found
MaskFinder = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int, float], list[Found]]


def _mask_detections(
    logits: np.ndarray, masks: np.ndarray, original_hw: list[tuple[int, int]], threshold: float, top_k: int | None,
    find: MaskFinder,
) -> list[DetectionArrays]:
    """What both mask postprocessings share: checks, each query's best class, best first and top_k per image."""
    threshold = validate_threshold(threshold)
    top_k = _validate_top_k(top_k, logits.shape[1] if logits.ndim > 1 else 1)
    _check_mask_outputs(logits, masks, original_hw)
    results = []
    for b, (height, width) in enumerate(original_hw):
        scores, classes = _query_scores(logits[b])
        results.append(_sorted_arrays(find(masks[b], scores, classes, height, width, threshold), top_k))
    return results


def postprocess_instance(
    logits: np.ndarray,
    masks: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int | None = None,
    mask_threshold: float = MASK_THRESHOLD,
    use_mask_score: bool = False,
) -> list[DetectionArrays]:
    """MaskFormer outputs -> one detection per query, as Focoos' fai_mf/bisenetformer processor returns them
    (predict_all_pixels off).

    logits [B, Q, C] class probabilities (no-object dropped); masks [B, Q, h, w] mask probabilities at any
    resolution (stride 4 for fai_mf). A query's class is its best class; its mask is its probability map
    resized (bilinear, half-pixel centres) straight to the original image and taken where >= mask_threshold.
    Focoos resizes to the network input first and then to the original, the same map where the two sizes
    agree (its eager segmentation runs at the image's own size). Queries whose mask has at most one pixel are
    dropped; the score is the class probability, times the mean mask probability inside the mask when
    use_mask_score; scores must exceed a positive threshold. Best first, at most top_k (Focoos keeps query
    order and no top_k: with top_k >= Q the detections are the same set).
    """

    def find(maps: np.ndarray, scores: np.ndarray, classes: np.ndarray, height: int, width: int,
             threshold: float) -> list[Found]:
        y_taps, x_taps = _taps(height, maps.shape[1]), _taps(width, maps.shape[2])
        found = []
        for q in np.flatnonzero([_over(s, threshold) for s in scores]):  # the mask score only lowers a score
            mask = _instance_mask(maps[q], y_taps, x_taps, mask_threshold)
            if mask is None:
                continue
            box, crop, inside = mask
            count = int(np.count_nonzero(crop))
            if count <= 1:
                continue
            score = float(scores[q]) * (_mask_score(inside, count) if use_mask_score else 1.0)
            if _over(score, threshold):
                found.append((score, int(classes[q]), box, encode_mask(crop)))
        return found

    return _mask_detections(logits, masks, original_hw, threshold, top_k, find)


def postprocess_semantic(
    logits: np.ndarray,
    masks: np.ndarray,
    original_hw: list[tuple[int, int]],
    threshold: float = 0.0,
    top_k: int | None = None,
    use_mask_score: bool = False,
) -> list[DetectionArrays]:
    """MaskFormer outputs -> Focoos' predict_all_pixels detections: every pixel goes to one query.

    Shapes as in postprocess_instance. Each pixel belongs to the query with the highest class probability x
    mask probability (the first such query on ties); each query that wins more than one pixel is a detection
    with its best class, its region as the mask and its class probability as the score (times the mean mask
    probability over the region when use_mask_score), kept when above a positive threshold. The masks are
    disjoint, several may carry the same class, and at threshold 0 they cover the image: `masks.label_map`
    rebuilds the label map. Maps are resized to the original image one query at a time and each region is
    cropped and encoded as soon as found, so memory stays a few bytes per pixel, never O(Q x H x W).
    """

    def find(maps: np.ndarray, scores: np.ndarray, classes: np.ndarray, height: int, width: int,
             threshold: float) -> list[Found]:
        best = np.full((height, width), -np.inf, dtype=np.float32)
        winner = np.zeros((height, width), dtype=np.int16 if len(scores) < 2**15 else np.int64)
        for q in range(len(scores)):
            value = _upsample(maps[q], height, width)
            value *= scores[q]
            better = value > best
            np.copyto(best, value, where=better)
            winner[better] = q
            del value, better
        del best
        counts = np.bincount(winner.ravel(), minlength=len(scores))
        found = []
        for q in np.flatnonzero(counts > 1):
            if not _over(float(scores[q]), threshold):
                continue
            x1, y1, x2, y2 = box = mask_box(winner == q)
            crop = winner[y1:y2, x1:x2] == q
            score = float(scores[q])
            if use_mask_score:
                prob = _upsample_window(maps[q], _taps(height, maps.shape[1]), _taps(width, maps.shape[2]),
                                        slice(y1, y2), slice(x1, x2))
                score *= _mask_score(float(prob[crop].sum(dtype=np.float64)), int(counts[q]))
            if _over(score, threshold):
                found.append((score, int(classes[q]), box, encode_mask(crop)))
        return found

    return _mask_detections(logits, masks, original_hw, threshold, top_k, find)


def mask_options(config: dict) -> dict:
    """The mask postprocessing flags of a model config with Focoos' defaults: read locally and by the
    builder (which stores them in the Triton step's parameters), so both paths answer alike."""
    return {
        "mask_threshold": float(config.get("mask_threshold", MASK_THRESHOLD)),
        "use_mask_score": bool(config.get("use_mask_score", False)),
        "predict_all_pixels": bool(config.get("predict_all_pixels", False)),
    }


def postprocess_masks(
    task: str, outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]], threshold: float,
    top_k: int | None, *, mask_threshold: float = MASK_THRESHOLD, use_mask_score: bool = False,
    predict_all_pixels: bool = False,
) -> list[DetectionArrays]:
    """A MaskFormer head's outputs (masks, logits) -> detections; predict_all_pixels picks the semantic
    rule, as Focoos' processors do."""
    if predict_all_pixels:
        return postprocess_semantic(outputs["logits"], outputs["masks"], original_hw, threshold, top_k,
                                    use_mask_score=use_mask_score)
    return postprocess_instance(outputs["logits"], outputs["masks"], original_hw, threshold, top_k, mask_threshold,
                                use_mask_score=use_mask_score)


def check_network_outputs(outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]]) -> None:
    """Refuse what no network answers: an empty or non-finite output, or an image size under one pixel. The
    Triton postprocess step takes these from anyone who calls it, and NaN in would be NaN boxes out."""
    for name, array in outputs.items():
        if array.size == 0:
            raise InvalidInputError(f"network output {name!r} is empty: shape {list(array.shape)}")
        if not np.isfinite(array).all():
            raise InvalidInputError(f"network output {name!r} holds NaN or infinite values")
    for i, (height, width) in enumerate(original_hw):
        if height < 1 or width < 1:
            raise InvalidInputError(f"original size of image {i} must be positive, got {height}x{width}")


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


def pad_keypoints(results: list[DetectionArrays], top_k: int) -> np.ndarray:
    """KEYPOINTS for Triton: float32 [B, K_top, num_keypoints, 3], zeros where a row has fewer detections."""
    per_person = next((r.keypoints.shape[1:] for r in results if r.keypoints is not None), (0, 3))
    out = np.zeros((len(results), top_k, *per_person), dtype=np.float32)
    for b, res in enumerate(results):
        if res.keypoints is not None:
            n = min(len(res.keypoints), top_k)
            out[b, :n] = res.keypoints[:n]
    return out


def pad_task_outputs(task: str, results: list[DetectionArrays], top_k: int) -> dict[str, np.ndarray]:
    """The postprocess step's output tensors for a task, in `task_outputs` order, padded to top_k."""
    num, boxes, scores, classes = pad_detections(results, top_k)
    padded = {NUM_DETECTIONS: num, BOXES: boxes, SCORES: scores, CLASSES: classes}
    if MASKS in task_outputs(task):
        padded[MASKS] = pad_masks(results, top_k)
    if KEYPOINTS in task_outputs(task):
        padded[KEYPOINTS] = pad_keypoints(results, top_k)
    return {name: padded[name] for name in task_outputs(task)}


def unpad_detections(
    num: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    with_boxes: bool = True,
    masks: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
) -> list[DetectionArrays]:
    """Inverse of pad_detections (and pad_masks, pad_keypoints when `masks`, `keypoints` are given)."""
    out = []
    for b in range(num.shape[0]):
        n = int(num[b].reshape(-1)[0])
        out.append(
            DetectionArrays(
                boxes[b, :n].astype(np.float32) if with_boxes else None,
                scores[b, :n].astype(np.float32),
                classes[b, :n].astype(np.int64),
                None if masks is None else [bytes(m) for m in masks[b, :n]],
                None if keypoints is None else keypoints[b, :n].astype(np.float32),
            )
        )
    return out
