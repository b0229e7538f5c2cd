"""Turn whatever a caller holds into an RGB uint8 HWC array, with errors that say what was wrong."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .errors import InvalidInputError

URL_TIMEOUT_S = 30.0
# Larger images are refused before decoding: a 20000x20000 RGB image is 1.2 GB of pixels. The server
# holds a request to a tighter budget (transport.MAX_REQUEST_PIXELS).
MAX_IMAGE_PIXELS = 8192 * 8192
# Formats decoded, as PIL names them: each one's size is read from its header before a pixel is decoded.
# OpenCV decodes more (Radiance HDR, OpenEXR, PFM...), some of them without a size check of ours.
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")


# libjpeg decodes at 1/2, 1/4 or 1/8 scale (DCT scaling) for about the cost of the smaller image.
REDUCED_DECODE_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                        (2, cv2.IMREAD_REDUCED_COLOR_2))


def decode_image(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode JPEG/PNG/... bytes into RGB uint8 HWC."""
    return decode_image_for(data, None)[0]


def decode_image_for(
    data: bytes | bytearray | memoryview | np.ndarray, input_hw: tuple[int, int] | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode for a network input of `input_hw`: (RGB uint8 HWC pixels, the image's full (h, w)).

    A JPEG at least twice the input on both sides is decoded at the largest 1/2, 1/4 or 1/8 scale that
    still covers the input, so a 12-megapixel photo costs a fraction of a full decode. Boxes and masks
    refer to the full size. With `input_hw` None, or for other formats, the image is decoded in full.
    """
    raw = data.astype(np.uint8, copy=False).tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw:
        raise InvalidInputError("image bytes are empty")
    header = _read_header(raw)
    factor, flag = 1, cv2.IMREAD_COLOR
    if input_hw is not None and header[2] == "JPEG":
        factor, flag = _reduction(header[:2], input_hw)
    buf = np.frombuffer(raw, dtype=np.uint8)
    image = cv2.imdecode(buf, flag)
    if image is None:
        raise InvalidInputError(f"cannot decode {buf.size} bytes as an image (corrupt or unsupported format)")
    image = _check_pixels(cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image))  # in place: no second copy
    if factor == 1:
        return image, image.shape[:2]
    height, width = header[:2]
    if abs(image.shape[0] * factor - width) < abs(image.shape[0] * factor - height):  # EXIF turned it a quarter
        height, width = width, height
    return image, (height, width)


def _reduction(image_hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """(factor, imread flag): the largest reduced scale whose image still covers the input on both sides."""
    ratio = min(image_hw[0] / input_hw[0], image_hw[1] / input_hw[1])
    for factor, flag in REDUCED_DECODE_FLAGS:
        if ratio >= factor:
            return factor, flag
    return 1, cv2.IMREAD_COLOR


def encoded_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int]:
    """(height, width) of encoded bytes from their header alone, so a caller can budget before decoding."""
    raw = data.astype(np.uint8, copy=False).tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return _read_header(raw)[:2]


def _read_header(data: bytes) -> tuple[int, int, str]:
    """(height, width, format) from the header alone; refuses a format off the allow-list, or a declared
    size that is empty or over the pixel limit."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as header:
            width, height = header.size
            image_format = header.format or ""
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"image exceeds the pixel limit: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - PIL says "cannot identify" for corrupt and for other formats
        raise InvalidInputError(
            f"cannot decode {len(data)} bytes as an image (corrupt, or not one of {', '.join(ALLOWED_FORMATS)})"
        ) from exc
    if width < 1 or height < 1:
        raise InvalidInputError(f"image has no pixels: {width}x{height}")
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"image of {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS}")
    return height, width, image_format


def _check_pixels(image: np.ndarray) -> np.ndarray:
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidInputError(
            f"image of {image.shape[1]}x{image.shape[0]} pixels exceeds the limit of {MAX_IMAGE_PIXELS}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidInputError(f"image has no pixels: shape {image.shape}")
    return np.ascontiguousarray(image)


def _from_array(array: np.ndarray, layout: str) -> np.ndarray:
    """Array in HWC (numpy) or CHW (torch) layout, uint8 0..255 or float 0..1 -> RGB uint8 HWC."""
    if array.ndim == 3 and layout == "CHW":
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InvalidInputError(
            f"image array must be HxW, HxWx1, HxWx3 or HxWx4 ({layout} for this input), got shape {array.shape}"
        )
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
            raise InvalidInputError(f"image array dtype must be integer or floating point, got {array.dtype}")
        if np.issubdtype(array.dtype, np.floating):
            if not np.isfinite(array).all():  # zeros in their place would be a silent, wrong answer
                raise InvalidInputError(f"image array holds NaN or infinite values ({array.dtype} {array.shape})")
            if array.size and float(array.max()) <= 1.0:
                array = array * 255.0
        array = np.clip(array, 0, 255).round().astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return _check_pixels(array)


def _read_url(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            return response.read()
    except OSError as exc:
        raise InvalidInputError(f"cannot fetch image from {url}: {exc}") from exc


def read_encoded(source: str | Path) -> bytes:
    """The encoded bytes of an image file or http(s) URL, as stored: what a server decodes itself."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return _read_url(text)
    path = Path(text)
    if not path.is_file():
        raise InvalidInputError(f"image file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if not data:
        raise InvalidInputError(f"image file is empty: {path}")
    return data


def load_payload(source: Any) -> bytes | np.ndarray:
    """One image as a server should receive it: files, URLs, bytes and readable objects as their encoded
    bytes (smaller than pixels, decoded where the work is done); anything else as RGB uint8 HWC pixels."""
    if isinstance(source, str | Path):
        return read_encoded(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if hasattr(source, "read"):
        return bytes(source.read())
    return load_image(source)


def load_image(source: Any) -> np.ndarray:
    """Load one image as RGB uint8 HWC.

    Accepts a file path or http(s) URL (str or Path), encoded bytes, a PIL image, a numpy array
    (HWC RGB, uint8 or float 0..1) or a torch tensor (CHW RGB, uint8 or float 0..1; recognised
    without importing torch).
    """
    if isinstance(source, str | Path):
        data = read_encoded(source)
        try:
            return decode_image(data)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: {exc}") from exc
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, "HWC")
    if type(source).__module__.startswith("torch") and hasattr(source, "detach"):
        return _from_array(source.detach().cpu().numpy(), "CHW")
    if type(source).__module__.startswith("PIL"):
        return _from_array(np.asarray(source.convert("RGB")), "HWC")
    if hasattr(source, "read"):
        return decode_image(source.read())
    raise InvalidInputError(
        f"unsupported image type {type(source).__name__}: pass a path, URL, bytes, PIL image, "
        "numpy HWC array or torch CHW tensor"
    )


def split_batch(sources: Any) -> tuple[list[Any], bool]:
    """One image, a list/tuple or a 4-D torch batch -> the single images and whether the caller passed a batch."""
    if isinstance(sources, list | tuple):
        if len(sources) == 0:
            raise InvalidInputError("empty list of images")
        return list(sources), True
    if type(sources).__module__.startswith("torch") and getattr(sources, "ndim", 0) == 4:
        return list(sources), True
    return [sources], False


def load_images(sources: Any) -> tuple[list[np.ndarray], bool]:
    """Load one image or a batch of them; returns the images and whether the input was a batch."""
    items, is_batch = split_batch(sources)
    return [load_image(s) for s in items], is_batch


def encode_image(image: np.ndarray, ext: str = ".jpg", quality: int = 95) -> bytes:
    """RGB uint8 HWC -> encoded bytes (JPEG by default)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InvalidInputError(f"cannot encode image as {ext}")
    return buf.tobytes()


__all__ = ["decode_image", "encode_image", "load_image", "load_images", "load_payload", "read_encoded", "split_batch"]
