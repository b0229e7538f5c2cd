"""Draw detections on an image with OpenCV: masks, boxes, labels and scores in a stable colour per class."""

from __future__ import annotations

import colorsys
from typing import Any

import cv2
import numpy as np

from .masks import decode_mask
from .transport import draws_boxes

MASK_ALPHA = 0.5


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
) -> np.ndarray:
    """Return a copy of the RGB image with the detections drawn; without boxes, a list of labels.

    Masks (PNG crops at their boxes) are blended in the class colour; semantic results pass
    draw_boxes=False and get their label at the top-left of each region's box.
    """
    canvas = image.copy()
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


def annotate_detections(image: Any, detections: Any, task: Any, classes: list[str] | None = None) -> np.ndarray:
    """Focoos' `annotate_image(im, detections, task, classes)`: draw a FocoosDetections on an image.

    `image` is anything `load_image` reads (path, numpy RGB, PIL, bytes); semantic results get no boxes.
    """
    from .image import load_image

    pixels = load_image(image)
    dets = list(detections.detections)
    boxes = np.asarray([d.bbox for d in dets if d.bbox is not None], dtype=np.float32).reshape(-1, 4)
    masks = [d.mask for d in dets if d.mask]
    return annotate_image(
        pixels,
        boxes if len(boxes) == len(dets) and dets else None,
        np.asarray([d.conf for d in dets], dtype=np.float32),
        np.asarray([d.cls_id for d in dets], dtype=np.int64),
        classes,
        masks if len(masks) == len(dets) and masks else None,
        draw_boxes=draws_boxes(str(getattr(task, "value", task))),
    )
