"""Draw detections on an image with OpenCV: masks, boxes, labels and scores in a stable colour per class."""

from __future__ import annotations

import colorsys
from typing import Any

import cv2
import numpy as np

from .masks import decode_mask
from .transport import draws_boxes

MASK_ALPHA = 0.5
KEYPOINT_THRESHOLD = 0.5  # Focoos draws a keypoint, and an edge to it, only from this score up


def class_color(cls_id: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per class id (golden-ratio hue steps)."""
    hue = (cls_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def annotate_image(
    image: np.ndarray,
    boxes: np.ndarray | None,
    scores: np.ndarray,
    classes: np.ndarray,
    labels: list[str] | None = None,
    masks: list[bytes] | None = None,
    draw_boxes: bool = True,
    keypoints: np.ndarray | None = None,
    skeleton: list | None = None,
) -> np.ndarray:
    """Return a copy of the RGB image with the detections drawn; without boxes, a list of labels.

    Masks (PNG crops at their boxes) are blended in the class colour; semantic results pass
    draw_boxes=False and get their label at the top-left of each region's box. Keypoints [N, K, 3]
    (x, y, score) are drawn as dots joined by the skeleton's edges (1-based keypoint pairs, Focoos'
    config `skeleton`), both only for keypoints scoring at least KEYPOINT_THRESHOLD.
    """
    canvas = image.copy()
    if keypoints is not None:
        _draw_keypoints(canvas, keypoints, classes, skeleton or [])
    for i, png in enumerate(masks or []):
        x1, y1 = int(round(float(boxes[i][0]))), int(round(float(boxes[i][1])))
        crop = decode_mask(png)
        region = canvas[y1 : y1 + crop.shape[0], x1 : x1 + crop.shape[1]]
        crop = crop[: region.shape[0], : region.shape[1]]
        color = np.asarray(class_color(int(classes[i])), dtype=np.float32)
        region[crop] = (region[crop] * (1 - MASK_ALPHA) + color * MASK_ALPHA).astype(np.uint8)
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    font_scale = max(0.4, min(canvas.shape[:2]) / 1000)
    for i, (score, cls_id) in enumerate(zip(scores, classes, strict=True)):
        name = labels[int(cls_id)] if labels and 0 <= int(cls_id) < len(labels) else str(int(cls_id))
        text = f"{name} {float(score):.2f}"
        color = class_color(int(cls_id))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        if boxes is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
            if draw_boxes:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
            ty = max(y1, th + base)
        else:
            x1, ty = 0, (i + 1) * (th + base + 4)
        cv2.rectangle(canvas, (x1, ty - th - base), (x1 + tw + 2, ty), color, -1)
        cv2.putText(
            canvas, text, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return canvas


def _draw_keypoints(canvas: np.ndarray, keypoints: np.ndarray, classes: np.ndarray, skeleton: list) -> None:
    radius = max(2, round(min(canvas.shape[:2]) / 160))
    for person, cls_id in zip(keypoints, classes, strict=True):
        color = class_color(int(cls_id))
        shown = person[:, 2] >= KEYPOINT_THRESHOLD
        points = [(int(round(float(x))), int(round(float(y)))) for x, y in person[:, :2]]
        for a, b in skeleton:
            if 1 <= a <= len(points) and 1 <= b <= len(points) and shown[a - 1] and shown[b - 1]:
                cv2.line(canvas, points[a - 1], points[b - 1], color, max(1, radius // 2), cv2.LINE_AA)
        for point, visible in zip(points, shown, strict=True):
            if visible:
                cv2.circle(canvas, point, radius, (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(canvas, point, radius, color, 1, cv2.LINE_AA)


def annotate_detections(
    image: Any, detections: Any, task: Any, classes: list[str] | None = None, keypoints_skeleton: list | None = None
) -> np.ndarray:
    """Focoos' `annotate_image(im, detections, task, classes, keypoints_skeleton)`: draw a FocoosDetections.

    `image` is anything `load_image` reads (path, numpy RGB, PIL, bytes); semantic results get no boxes.
    """
    from .image import load_image

    pixels = load_image(image)
    dets = list(detections.detections)
    boxes = np.asarray([d.bbox for d in dets if d.bbox is not None], dtype=np.float32).reshape(-1, 4)
    masks = [d.mask for d in dets if d.mask]
    points = detections.keypoints
    return annotate_image(
        pixels,
        boxes if len(boxes) == len(dets) and dets else None,
        np.asarray([d.conf for d in dets], dtype=np.float32),
        np.asarray([d.cls_id for d in dets], dtype=np.int64),
        classes,
        masks if len(masks) == len(dets) and masks else None,
        draw_boxes=draws_boxes(str(getattr(task, "value", task))),
        keypoints=points if len(points) == len(dets) and dets else None,
        skeleton=keypoints_skeleton,
    )
