"""Focoos' `focoos.utils.vision` helpers: image loading, class/index maps, base64 PNG masks and the
conversions to and from `supervision.Detections`.

They reuse `focoos.processing` (the one implementation inference and serving share); supervision is imported
only by the two functions that return or take its types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from focoos.ports import FocoosDet, FocoosDetections
from focoos.processing.annotate import annotate_detections as annotate_image
from focoos.processing.image import load_image
from focoos.processing.masks import decode_mask, encode_mask, paste_mask, to_base64

__all__ = [
    "annotate_image", "base64mask_to_mask", "binary_mask_to_base64", "class_to_index", "fai_detections_to_sv",
    "image_loader", "image_preprocess", "index_to_class", "sv_to_fai_detections",
]


def index_to_class(class_ids: list[int], classes: list[str]) -> list[str]:
    """Class names of `class_ids`."""
    return [classes[i] for i in class_ids]


def class_to_index(classes: list[str], class_names: list[str]) -> list[int]:
    """Indices in `class_names` of each name in `classes` (ValueError for a name it lacks)."""
    index = {name: i for i, name in reversed(list(enumerate(class_names)))}
    missing = [c for c in classes if c not in index]
    if missing:
        raise ValueError(f"classes not in the list: {missing}")
    return [index[c] for c in classes]


def image_loader(im: bytes | str | Path | np.ndarray | Any) -> np.ndarray:
    """Any image input (path, http(s) URL, bytes, PIL image, numpy HWC RGB, torch CHW) as RGB uint8 HWC.

    Unlike Focoos, a PIL image keeps its channel order (Focoos swaps it, a quirk not copied).
    """
    return load_image(im)


def image_preprocess(
    im: bytes | str | Path | np.ndarray | Any, dtype: Any = np.float32, resize: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(1xCxHxW array of `dtype`, resized to `resize` when given; the original RGB image), as Focoos returns."""
    im0 = image_loader(im)
    resized = im0
    if resize is not None and im0.shape[:2] != (resize, resize):
        resized = cv2.resize(im0, (resize, resize), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[np.newaxis], dtype=dtype), im0


def base64mask_to_mask(base64mask: str) -> np.ndarray:
    """A `FocoosDet.mask` (base64 PNG of the mask cropped to its box) as a boolean array of the crop's size."""
    return decode_mask(base64mask)


def binary_mask_to_base64(binary_mask: np.ndarray) -> str:
    """A binary mask as base64 PNG text (the `FocoosDet.mask` encoding)."""
    return to_base64(encode_mask(np.asarray(binary_mask).astype(bool)))


def fai_detections_to_sv(inference_output: FocoosDetections, im0_shape: tuple[int, ...]) -> Any:
    """`supervision.Detections` of a result; masks are pasted at their boxes into images of `im0_shape` (h, w)."""
    import supervision as sv

    if not inference_output.detections:
        return sv.Detections(xyxy=np.zeros((0, 4)), class_id=np.array([], dtype=int),
                             confidence=np.array([], dtype=np.float32), mask=None)
    height, width = int(im0_shape[0]), int(im0_shape[1])
    dets = inference_output.detections
    masks = None
    if any(d.mask for d in dets):
        masks = np.stack([paste_mask(decode_mask(d.mask), d.bbox or [0, 0, 0, 0], (height, width)) if d.mask
                          else np.zeros((height, width), dtype=bool) for d in dets])
    xyxy = np.asarray([d.bbox if d.bbox is not None else [0, 0, 0, 0] for d in dets], dtype=np.float32)
    return sv.Detections(xyxy=xyxy, class_id=inference_output.class_id.astype(np.int32),
                         confidence=inference_output.confidence, mask=masks)


def sv_to_fai_detections(detections: Any, classes: list[str] | None = None) -> list[FocoosDet]:
    """FocoosDets from `supervision.Detections` (full-size masks become cropped base64 PNG masks)."""
    return list(FocoosDetections.from_supervision(detections, classes).detections)
