"""The served ensemble's tensor contract, and packing images into it.

Names are defined here once: the builder writes them into config.pbtxt, the Python-backend
steps (which get a copy of this package) read them, and the client sends them.

A request carries a batch of images in `IMAGE` (UINT8 [B, N], one row per image, zero padded)
and, optionally, `IMAGE_SHAPE` (INT32 [B, 3]): a row of zeros means "encoded JPEG/PNG bytes",
(h, w, c) means raw HWC pixels in the first h*w*c bytes. Encoded bytes travel as 1-D UINT8
rather than TYPE_STRING, which the python backend deserialises slowly.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError
from .image import _from_array, decode_image_for, encoded_size

IMAGE = "IMAGE"
IMAGE_SHAPE = "IMAGE_SHAPE"
NETWORK_INPUT = "images"
ORIGINAL_HW = "ORIGINAL_HW"
NUM_DETECTIONS = "NUM_DETECTIONS"
BOXES = "BOXES"
SCORES = "SCORES"
CLASSES = "CLASSES"
MASKS = "MASKS"  # BYTES [B, K]: PNG of each mask cropped to its box (see masks.py), b"" as padding
KEYPOINTS = "KEYPOINTS"  # FP32 [B, K, num_keypoints, 3]: x, y original pixels and visibility score, 0 as padding
# Which tasks return boxes, masks and keypoints (classification returns none).
BOX_TASKS = ("detection", "instseg", "semseg", "keypoint")
MASK_TASKS = ("instseg", "semseg")
KEYPOINT_TASKS = ("keypoint",)
# Semantic maps have one region per class, often disjoint pieces: their boxes are not drawn.
UNBOXED_DRAWING_TASKS = ("semseg",)


def task_outputs(task: str) -> tuple[str, ...]:
    """The ensemble's output tensors for a task, in order: what the builder declares and the client reads."""
    return (
        NUM_DETECTIONS,
        *((BOXES,) if task in BOX_TASKS else ()),
        SCORES,
        CLASSES,
        *((MASKS,) if task in MASK_TASKS else ()),
        *((KEYPOINTS,) if task in KEYPOINT_TASKS else ()),
    )


def draws_boxes(task: str) -> bool:
    """Whether annotation draws boxes for this task (every task but semantic segmentation)."""
    return task not in UNBOXED_DRAWING_TASKS


PARAM_THRESHOLD = "threshold"
# The score a detection must exceed when neither the call nor the model's config sets a threshold
# (Focoos' configs default to it too): local inference, the builder, the CLI and the client read this.
DEFAULT_THRESHOLD = 0.5
PARAM_TOP_K = "top_k"
# Preprocess step option: decode large JPEGs at a reduced scale that still covers the network input.
PARAM_REDUCED_DECODE = "reduced_decode"
# Preprocess step option of families whose eager inference runs at the image's own size (FamilySpec.native_size):
# the most pixels an image runs at; larger images are scaled down to it (0: every image at the model's im_size).
PARAM_NATIVE_MAX_PIXELS = "native_max_pixels"
# Admission control (builder/python_models/admission.py): requests in flight through one ensemble at most,
# and the longest a slot stays taken by a request that never reached the postprocess step.
PARAM_MAX_IN_FLIGHT = "max_in_flight"
PARAM_ADMISSION_MAX_LEASE_S = "admission_max_lease_s"
# INT64 [B, 2]: the admission slot and its token, from the preprocess step to the postprocess step.
ADMISSION = "ADMISSION"
# Opens the message of a call refused for lack of capacity (gRPC UNAVAILABLE, HTTP 503): clients map it to busy.
SERVER_BUSY = "server busy"
# Pixels one served request may carry, summed over its images (a batch is one request). What a pixel costs
# the server (measured in tests/test_hostile_input.py): 3 bytes decoded, 12 more while the preprocess step
# casts an image to float32 to resize it, the raw bytes twice more when pixels come raw (the gRPC message and
# the Python step's shared memory), a few bytes while a mask is upsampled. At 24 MP a raw request peaked at
# +495 MB, too near the 512 MB bound on what one request may add to the server's idle memory; 16 MP (a
# 4896x3264 photo, a 12 MP phone photo with room) stays well under it. Larger images are refused before
# they are decoded: resize them on the client.
MAX_REQUEST_PIXELS = 16_000_000


def check_request_pixels(sizes: list[tuple[int, int]]) -> None:
    """Refuse image sizes that are empty or whose sum is over MAX_REQUEST_PIXELS: the server's memory bound,
    checked from headers and declared shapes before anything is decoded or upsampled."""
    for i, (height, width) in enumerate(sizes):
        if height < 1 or width < 1:
            raise InvalidInputError(f"image {i} of the batch has no pixels: {height}x{width}")
    total = sum(int(height) * int(width) for height, width in sizes)
    if total > MAX_REQUEST_PIXELS:
        raise InvalidInputError(
            f"{len(sizes)} image(s) of {total} pixels in all exceed the server's limit of {MAX_REQUEST_PIXELS} "
            "pixels per request: resize them or send them in several requests"
        )


def pack_images(images: list[bytes | np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """Encoded bytes and/or RGB uint8 HWC arrays -> (IMAGE [B, N], IMAGE_SHAPE [B, 3] or None)."""
    if not images:
        raise InvalidInputError("empty list of images")
    rows, shapes = [], []
    for image in images:
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3:
                raise InvalidInputError(f"raw images must be uint8 HxWxC, got {image.dtype} {image.shape}")
            rows.append(np.ascontiguousarray(image).reshape(-1))
            shapes.append(image.shape)
        else:
            rows.append(np.frombuffer(bytes(image), dtype=np.uint8))
            shapes.append((0, 0, 0))
    packed = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.uint8)
    for i, row in enumerate(rows):
        packed[i, : len(row)] = row
    raw = any(s != (0, 0, 0) for s in shapes)
    return packed, np.asarray(shapes, dtype=np.int32) if raw else None


def unpack_images(
    packed: np.ndarray, shapes: np.ndarray | None, input_hw: tuple[int, int] | None = None
) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Inverse of pack_images: (RGB uint8 HWC images, their full sizes), with errors that name the bad row.

    With `input_hw`, large JPEGs are decoded at a reduced scale that still covers it (decode_image_for).
    """
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] == 0:
        raise InvalidInputError(f"{IMAGE} must be UINT8 [batch, bytes], got {packed.dtype} {list(packed.shape)}")
    if shapes is not None and shapes.shape != (packed.shape[0], 3):
        raise InvalidInputError(f"{IMAGE_SHAPE} must be INT32 [batch, 3], got {list(shapes.shape)}")
    declared = [_declared_size(i, row, shapes) for i, row in enumerate(packed)]
    check_request_pixels(declared)
    images, sizes = [], []
    for i, row in enumerate(packed):
        height, width, channels = (int(v) for v in shapes[i]) if shapes is not None else (0, 0, 0)
        try:
            if (height, width, channels) == (0, 0, 0):
                image, full_hw = decode_image_for(row, input_hw)
                images.append(image)
                sizes.append(full_hw)
                continue
            images.append(_from_array(row[: height * width * channels].reshape(height, width, channels), "HWC"))
            sizes.append((height, width))
        except InvalidInputError as exc:
            raise InvalidInputError(f"image {i} of the batch: {exc}") from exc
    return images, sizes


def _declared_size(i: int, row: np.ndarray, shapes: np.ndarray | None) -> tuple[int, int]:
    """(height, width) a row declares, from its image header or its IMAGE_SHAPE row, before any decoding."""
    height, width, channels = (int(v) for v in shapes[i]) if shapes is not None else (0, 0, 0)
    try:
        if (height, width, channels) == (0, 0, 0):
            return encoded_size(row)
        if min(height, width) < 1 or channels not in (1, 3, 4) or height * width > MAX_REQUEST_PIXELS:
            raise InvalidInputError(f"invalid raw image shape {[height, width, channels]}: (height, width, 1, 3 or "
                                    f"4 channels) of at most {MAX_REQUEST_PIXELS} pixels")
        if height * width * channels > row.size:
            raise InvalidInputError(f"raw image {[height, width, channels]} needs more than {row.size} bytes")
        return height, width
    except InvalidInputError as exc:
        raise InvalidInputError(f"image {i} of the batch: {exc}") from exc
