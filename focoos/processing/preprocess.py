"""Resize and lay out images for the network. Normalisation happens inside the exported graph."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InvalidInputError

# The network takes raw 0..255 RGB pixels as float32 (Focoos' input contract): bilinear resizing in
# float gives Focoos' exact input, which rounding to uint8 would shift by up to half a grey level.
NETWORK_INPUT_DTYPE = np.float32


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize straight to (height, width) in float32, no letterbox, bilinear without antialiasing:
    the same values as Focoos' torch interpolate(mode="bilinear", align_corners=False)."""
    height, width = size_hw
    pixels = image.astype(NETWORK_INPUT_DTYPE)
    if image.shape[:2] == (height, width):
        return pixels
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)


def native_size(images: list[np.ndarray], max_pixels: int) -> tuple[int, int] | None:
    """The size a batch runs at when served at the images' own size: None (their own) up to `max_pixels`,
    else scaled down to it, aspect kept. Images of one request must share a size, as in one eager batch."""
    sizes = {image.shape[:2] for image in images}
    if len(sizes) != 1:
        raise InvalidInputError(f"this model runs each image at its own size: images of different sizes "
                                f"{sorted(sizes)} cannot share a request, send them in separate calls")
    height, width = sizes.pop()
    if height * width <= max_pixels:
        return None
    scale = (max_pixels / (height * width)) ** 0.5
    return max(1, int(height * scale)), max(1, int(width * scale))


def preprocess_images(images: list[np.ndarray], size_hw: tuple[int, int] | None) -> np.ndarray:
    """RGB uint8 HWC images -> one float32 NCHW batch of raw pixels at size_hw.

    size_hw None keeps the images' own size (Focoos' eager segmentation); they must then agree.
    The graphs normalise inside, so mean and std live in one place.
    """
    if not images:
        raise InvalidInputError("no images to preprocess")
    if size_hw is None:
        sizes = {image.shape[:2] for image in images}
        if len(sizes) != 1:
            raise InvalidInputError(f"images of different sizes {sorted(sizes)} cannot share a batch at their own size")
        size_hw = images[0].shape[:2]
    batch = np.empty((len(images), 3, size_hw[0], size_hw[1]), dtype=NETWORK_INPUT_DTYPE)
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(
                f"image {i} must be RGB uint8 HxWx3, got shape {image.shape} and dtype {image.dtype}"
            )
        batch[i] = resize_image(image, size_hw).transpose(2, 0, 1)
    return batch
