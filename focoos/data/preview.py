"""Draw dataset items with their ground truth, to check data and augmentations by eye (MapDataset.preview).

Uses the inference annotator, so a preview of the data looks like a prediction on it (every
ground-truth object is drawn with score 1.00).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focoos.ports import Task
from focoos.processing.annotate import annotate_image
from focoos.processing.masks import encode_mask, mask_box

# Gap between items drawn side by side, in pixels.
GAP = 8


def _crops(masks: list[np.ndarray], boxes: np.ndarray) -> list[bytes]:
    """Each mask cropped at its box's rounded corner, PNG-encoded: the form annotate_image draws."""
    crops = []
    for mask, box in zip(masks, boxes, strict=True):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        crops.append(encode_mask(mask[max(y1, 0) : max(y2, y1 + 1), max(x1, 0) : max(x2, x1 + 1)]))
    return crops


def draw_item(
    item: dict[str, Any], classes: list[str], task: Task, skeleton: list | None = None, ignore_index: int | None = None
) -> np.ndarray:
    """RGB uint8 HWC picture of one MapDataset item with its boxes, masks, keypoints (and `skeleton`) or label.

    `ignore_index`: the semantic label that marks pixels not scored, left undrawn (the dataset passes its
    own, so this module needs nothing from the dataset's)."""
    image = np.ascontiguousarray(item["image"].permute(1, 2, 0).numpy())
    if task == Task.CLASSIFICATION:
        label = np.asarray([int(item["label"])])
        return annotate_image(image, None, np.ones(1), label, classes)
    if task == Task.SEMSEG:
        sem_seg = item["sem_seg"].numpy()
        present = [int(c) for c in np.unique(sem_seg) if c != ignore_index]
        masks = [sem_seg == c for c in present]
        boxes = np.asarray([mask_box(m) for m in masks], dtype=np.float32).reshape(-1, 4)
        ids = np.asarray(present, dtype=np.int64)
        return annotate_image(image, boxes, np.ones(len(ids)), ids, classes, _crops(masks, boxes), draw_boxes=False)
    boxes = item["boxes"].numpy().reshape(-1, 4)
    labels = item["labels"].numpy()
    crops = None
    if "masks" in item:
        crops = _crops([m.astype(bool) for m in item["masks"].numpy()], boxes)
    keypoints = None
    if "keypoints" in item:  # labelled points score 1, unlabeled 0 (not drawn)
        keypoints = item["keypoints"].numpy().copy()
        keypoints[..., 2] = keypoints[..., 2] > 0
    return annotate_image(image, boxes, np.ones(len(labels)), labels, classes, crops, keypoints=keypoints,
                          skeleton=skeleton)


def side_by_side(pictures: list[np.ndarray]) -> np.ndarray:
    """One picture of several, left to right on a white background, tops aligned."""
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + GAP * (len(pictures) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for picture in pictures:
        canvas[: picture.shape[0], x : x + picture.shape[1]] = picture
        x += picture.shape[1] + GAP
    return canvas


__all__ = ["draw_item", "side_by_side"]
