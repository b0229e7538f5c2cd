"""Pre/postprocessing shared by local inference, Triton's Python-backend steps and the client.

Imports numpy, opencv and pillow only, and only relatively within this package, so the builder
can copy the folder next to a Python-backend `model.py` and the repository stays self-contained.
"""

from .annotate import annotate_image, class_color
from .errors import FocoosError, InvalidInputError
from .image import decode_image, encode_image, load_image, load_images
from .masks import decode_mask, encode_mask, label_map, mask_box, paste_mask, to_base64
from .postprocess import (
    DetectionArrays,
    pad_detections,
    pad_masks,
    pad_task_outputs,
    postprocess_classification,
    postprocess_detr,
    postprocess_instance,
    postprocess_masks,
    postprocess_semantic,
    unpad_detections,
    validate_threshold,
)
from .preprocess import preprocess_images, resize_image

__all__ = [
    "DetectionArrays",
    "FocoosError",
    "InvalidInputError",
    "annotate_image",
    "class_color",
    "decode_image",
    "decode_mask",
    "encode_mask",
    "label_map",
    "mask_box",
    "pad_masks",
    "pad_task_outputs",
    "paste_mask",
    "postprocess_instance",
    "postprocess_semantic",
    "postprocess_masks",
    "to_base64",
    "encode_image",
    "load_image",
    "load_images",
    "pad_detections",
    "postprocess_classification",
    "postprocess_detr",
    "preprocess_images",
    "resize_image",
    "unpad_detections",
    "validate_threshold",
]
