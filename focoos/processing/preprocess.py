"""Resize and lay out images for the network. Normalisation happens inside the exported graph."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InvalidInputError


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize straight to (height, width), no letterbox, bilinear (the Focoos convention)."""
    height, width = size_hw
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def preprocess_images(images: list[np.ndarray], size_hw: tuple[int, int]) -> np.ndarray:
    """RGB uint8 HWC images -> one uint8 NCHW batch at size_hw.

    The exported graphs take uint8 and normalise inside: a quarter of the bytes of float32
    between the Triton steps, and one place that knows mean and std.
    """
    if not images:
        raise InvalidInputError("no images to preprocess")
    batch = np.empty((len(images), 3, size_hw[0], size_hw[1]), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(
                f"image {i} must be RGB uint8 HxWx3, got shape {image.shape} and dtype {image.dtype}"
            )
        batch[i] = resize_image(image, size_hw).transpose(2, 0, 1)
    return batch
