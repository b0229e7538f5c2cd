"""Request building and response parsing shared by the sync and async clients (no I/O here)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient

from focoos.errors import InvalidInputError
from focoos.ports import FocoosDetections, InferLatency, to_hw
from focoos.processing import annotate_image, decode_image, load_image, unpad_detections, validate_threshold
from focoos.processing.image import split_batch
from focoos.processing.transport import (
    BOX_TASKS,
    BOXES,
    CLASSES,
    IMAGE,
    IMAGE_SHAPE,
    MASK_TASKS,
    MASKS,
    NUM_DETECTIONS,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    SCORES,
    pack_images,
)
from focoos.results import to_focoos_detections

from .errors import InvalidInput

URL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServedModelInfo:
    """What the ensemble's config tells a client: task, class names, input size, defaults."""

    name: str
    task: str
    classes: list[str]
    im_size: tuple[int, int]
    top_k: int
    threshold: float
    source_model: str
    max_batch_size: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServedModelInfo:
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        if "classes" not in params:
            raise InvalidInput(f"model '{config.get('name')}' is not a focoos ensemble (no class names in its config)")
        return cls(
            name=config["name"],
            task=params.get("task", "detection"),
            classes=json.loads(params["classes"]),
            im_size=to_hw(json.loads(params.get("im_size", "[0, 0]"))),
            top_k=int(params.get("top_k", "100")),
            threshold=float(params.get("threshold", "0.5")),
            source_model=params.get("source_model", ""),
            max_batch_size=int(config.get("max_batch_size", 0)),
        )


def prepare_payload(source: Any) -> bytes | np.ndarray:
    """Encoded files and URLs travel as they are (the server decodes); pixels travel raw as RGB HWC."""
    try:
        if isinstance(source, str | Path):
            text = str(source)
            if text.startswith(("http://", "https://")):
                with urllib.request.urlopen(text, timeout=URL_TIMEOUT_S) as response:
                    return response.read()
            path = Path(text)
            if not path.is_file():
                raise InvalidInputError(f"image file not found: {path}")
            data = path.read_bytes()
            if not data:
                raise InvalidInputError(f"image file is empty: {path}")
            return data
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(source)
        return load_image(source)
    except InvalidInputError as exc:
        raise InvalidInput(str(exc)) from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read image {source!r}: {exc}") from exc


def prepare_payloads(images: Any) -> tuple[list[bytes | np.ndarray], bool]:
    """One image or a list (or a 4-D torch batch) -> payloads and whether the caller passed a batch."""
    try:
        items, is_batch = split_batch(images)
    except InvalidInputError as exc:
        raise InvalidInput(str(exc)) from exc
    return [prepare_payload(im) for im in items], is_batch


def build_inputs(payloads: list[bytes | np.ndarray]) -> list[grpcclient.InferInput]:
    packed, shapes = pack_images(payloads)
    inputs = [grpcclient.InferInput(IMAGE, list(packed.shape), "UINT8")]
    inputs[0].set_data_from_numpy(packed)
    if shapes is not None:
        inputs.append(grpcclient.InferInput(IMAGE_SHAPE, list(shapes.shape), "INT32"))
        inputs[1].set_data_from_numpy(shapes)
    return inputs


def build_parameters(threshold: float, top_k: int | None, info: ServedModelInfo) -> dict[str, Any]:
    try:
        params: dict[str, Any] = {PARAM_THRESHOLD: validate_threshold(threshold)}
    except InvalidInputError as exc:
        raise InvalidInput(str(exc)) from exc
    if top_k is not None:
        if not 1 <= int(top_k) <= info.top_k:
            raise InvalidInput(f"top_k must be in [1, {info.top_k}] for '{info.name}', got {top_k}")
        params[PARAM_TOP_K] = int(top_k)
    return params


def parse_response(
    result: Any,
    info: ServedModelInfo,
    payloads: list[bytes | np.ndarray],
    annotate: bool,
    latency: InferLatency,
) -> list[FocoosDetections]:
    """Unpad the fixed-rank outputs into FocoosDetections; draw them when asked."""
    with_boxes = info.task in BOX_TASKS
    arrays = unpad_detections(
        result.as_numpy(NUM_DETECTIONS),
        result.as_numpy(BOXES) if with_boxes else None,
        result.as_numpy(SCORES),
        result.as_numpy(CLASSES),
        with_boxes=with_boxes,
        masks=result.as_numpy(MASKS) if info.task in MASK_TASKS else None,
    )
    detections = [to_focoos_detections(a, info.classes) for a in arrays]
    for det, arr, payload in zip(detections, arrays, payloads, strict=True):
        if annotate:
            pixels = payload if isinstance(payload, np.ndarray) else decode_image(payload)
            det.image = annotate_image(pixels, arr.boxes, arr.scores, arr.classes, info.classes, arr.masks,
                                       draw_boxes=info.task != "semseg")
        det.latency = latency
    return detections
