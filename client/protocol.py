"""Everything the sync and asyncio clients share: options, discovery, request building, response
parsing and error mapping. No I/O here: each client only makes (or awaits) the call `ClientCore._rpc`
prepares, and passes what it gets back.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient

import focoos.errors as library
from focoos.ports import FocoosDetections, InferLatency, seconds_since, to_hw
from focoos.processing import annotate_image, decode_image, unpad_detections, validate_threshold
from focoos.processing.image import encoded_size, load_payload, split_batch
from focoos.processing.transport import (
    BOXES,
    CLASSES,
    IMAGE,
    IMAGE_SHAPE,
    KEYPOINTS,
    MASKS,
    NUM_DETECTIONS,
    PARAM_NATIVE_MAX_PIXELS,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    SCORES,
    draws_boxes,
    pack_images,
    task_outputs,
)
from focoos.results import to_focoos_detections

from .errors import InvalidInputError, TritonClientError, from_triton_exception
from .http import HttpTritonClient, is_http_url
from .options import ClientOptions
from .tls import check_tls_files

# Ensemble config parameters a client needs (the builder writes them all).
SERVED_FACTS = ("task", "classes", "im_size", PARAM_TOP_K, PARAM_THRESHOLD)
INFER_OPTIONS = ("threshold", "annotate", "top_k", "timeout_s")  # infer()'s options after the images


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
    skeleton: tuple = ()  # keypoint models: 1-based keypoint pairs that annotate joins
    native_max_pixels: int = 0  # > 0: served at each image's own size (one size per request)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServedModelInfo:
        """Read the facts the builder wrote into the ensemble's `parameters`; defaults are the server's."""
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        missing = [key for key in SERVED_FACTS if key not in params]
        if missing:
            raise InvalidInputError(f"model '{config.get('name')}' is not a focoos ensemble: its config lacks "
                                    f"{', '.join(missing)}")
        model_config = json.loads(params.get("model_info", "{}")).get("config", {})
        return cls(
            name=config["name"],
            task=params["task"],
            classes=json.loads(params["classes"]),
            im_size=to_hw(json.loads(params["im_size"])),
            top_k=int(params[PARAM_TOP_K]),
            threshold=float(params[PARAM_THRESHOLD]),
            source_model=params.get("source_model", ""),
            max_batch_size=int(config.get("max_batch_size", 0)),
            skeleton=tuple(tuple(pair) for pair in model_config.get("skeleton", [])),
            native_max_pixels=int(params.get(PARAM_NATIVE_MAX_PIXELS, "0") or 0),
        )


def prepare_payload(source: Any) -> bytes | np.ndarray:
    """Encoded files, URLs and bytes travel as they are (the server decodes); pixels travel raw as RGB HWC."""
    try:
        return load_payload(source)
    except library.InvalidInputError as exc:
        raise InvalidInputError(str(exc)) from exc
    except OSError as exc:  # a readable object that failed to read
        raise InvalidInputError(f"cannot read image {source!r}: {exc}") from exc


def prepare_payloads(images: Any) -> tuple[list[bytes | np.ndarray], bool]:
    """One image or a list (or a 4-D torch batch) -> payloads and whether the caller passed a batch."""
    try:
        items, is_batch = split_batch(images)
    except library.InvalidInputError as exc:
        raise InvalidInputError(str(exc)) from exc
    return [prepare_payload(im) for im in items], is_batch


def build_inputs(payloads: list[bytes | np.ndarray], tensors: Any = grpcclient) -> list[Any]:
    """The ensemble's inputs as `tensors.InferInput` (tritonclient.grpc or .http: both build them alike)."""
    packed, shapes = pack_images(payloads)
    inputs = [tensors.InferInput(IMAGE, list(packed.shape), "UINT8")]
    inputs[0].set_data_from_numpy(packed)
    if shapes is not None:
        inputs.append(tensors.InferInput(IMAGE_SHAPE, list(shapes.shape), "INT32"))
        inputs[1].set_data_from_numpy(shapes)
    return inputs


def build_parameters(threshold: float | None, top_k: int | None, info: ServedModelInfo) -> dict[str, Any]:
    """Request parameters; an option left out is not sent, so the ensemble applies its own default."""
    params: dict[str, Any] = {}
    if threshold is not None:
        try:
            params[PARAM_THRESHOLD] = validate_threshold(threshold)
        except library.InvalidInputError as exc:
            raise InvalidInputError(str(exc)) from exc
    if top_k is not None:
        if not 1 <= int(top_k) <= info.top_k:
            raise InvalidInputError(f"top_k must be in [1, {info.top_k}] for '{info.name}', got {top_k}")
        params[PARAM_TOP_K] = int(top_k)
    return params


def parse_response(
    result: Any,
    info: ServedModelInfo,
    payloads: list[bytes | np.ndarray],
    annotate: bool,
    latency: InferLatency,
) -> list[FocoosDetections]:
    """Unpad the task's fixed-rank outputs into FocoosDetections; draw them when asked."""
    outputs = {name: result.as_numpy(name) for name in task_outputs(info.task)}
    arrays = unpad_detections(
        outputs[NUM_DETECTIONS], outputs.get(BOXES), outputs[SCORES], outputs[CLASSES],
        with_boxes=BOXES in outputs, masks=outputs.get(MASKS), keypoints=outputs.get(KEYPOINTS),
    )  # fmt: skip
    detections = [to_focoos_detections(a, info.classes) for a in arrays]
    for det, arr, payload in zip(detections, arrays, payloads, strict=True):
        if annotate:
            pixels = payload if isinstance(payload, np.ndarray) else decode_image(payload)
            det.image = annotate_image(pixels, arr.boxes, arr.scores, arr.classes, info.classes, arr.masks,
                                       draw_boxes=draws_boxes(info.task), keypoints=arr.keypoints,
                                       skeleton=list(info.skeleton))
        det.latency = latency
    return detections


def check_options(call: str, unknown: Iterable[str], valid: Iterable[str]) -> None:
    """Misspelt options are errors, never silently ignored."""
    unknown = sorted(unknown)
    if unknown:
        raise TypeError(f"{call} got unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def resolve_options(owner: str, options: ClientOptions | None, fields: dict[str, Any]) -> ClientOptions:
    """`options=ClientOptions(...)` or its fields as keywords, not both; a misspelt field is a TypeError."""
    check_options(f"{owner}()", set(fields) - set(ClientOptions.model_fields), ["options", *ClientOptions.model_fields])
    if options is not None and fields:
        raise TypeError(f"{owner}() takes options= or ClientOptions fields as keywords, not both")
    options = options if options is not None else ClientOptions(**fields)
    if options.tls:  # now: gRPC reads the files only at the first call, and says little when they are wrong
        check_tls_files(options.root_certificates, options.certificate_chain, options.private_key, "client")
    return options


def ready_models(index: dict) -> list[str]:
    """Names of the READY models in a repository index."""
    return sorted(m["name"] for m in index.get("models", []) if m.get("state") == "READY")


def request_groups(payloads: list[bytes | np.ndarray], info: ServedModelInfo) -> list[list[int]]:
    """Which payloads travel together: all in one request, or one request per image size for a model served
    at each image's own size (one size per request, as in one eager batch)."""
    if not info.native_max_pixels or len(payloads) < 2:
        return [list(range(len(payloads)))]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, payload in enumerate(payloads):
        try:
            size = payload.shape[:2] if isinstance(payload, np.ndarray) else encoded_size(payload)
        except library.InvalidInputError as exc:
            raise InvalidInputError(f"image {i}: {exc}") from exc
        groups.setdefault(tuple(size), []).append(i)
    return list(groups.values())


@dataclass
class InferCall:
    """One prepared infer(): its RPCs (one per request group) and what turns their results into detections."""

    rpcs: list[Callable[[], Any]]
    groups: list[list[int]]
    info: ServedModelInfo
    payloads: list[bytes | np.ndarray]
    is_batch: bool
    annotate: bool
    latency: InferLatency
    sent: float

    def finish(self, results: list[Any]) -> FocoosDetections | list[FocoosDetections]:
        """Detections in the caller's order from the results of `rpcs`, in order."""
        self.latency.inference = seconds_since(self.sent)
        start = time.perf_counter()
        detections: list[Any] = [None] * len(self.payloads)
        for group, result in zip(self.groups, results, strict=True):
            parsed = parse_response(result, self.info, [self.payloads[i] for i in group], self.annotate, self.latency)
            for i, det in zip(group, parsed, strict=True):
                detections[i] = det
        self.latency.postprocess = seconds_since(start)
        return detections if self.is_batch else detections[0]


class ClientCore:
    """State and logic of a client of one served ensemble. Subclasses pick the tritonclient flavour
    (grpc or grpc.aio) and run the prepared calls; retries are the channel's (see options). An
    http(s):// URL takes Triton's HTTP endpoint instead (focoos.client.http), with the same calls."""

    def __init__(
        self, client_type: type, url: str, model_name: str, options: ClientOptions | None, fields: dict[str, Any]
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.options = resolve_options(type(self).__name__, options, fields)
        if is_http_url(url):
            self._client = HttpTritonClient(url, self.options)
            self._tensors = self._client.module
        else:
            self._client = client_type(url, **self.options.client_kwargs())
            self._tensors = grpcclient
        self._info: ServedModelInfo | None = None

    def _rpc(self, method: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Callable[[], Any]:
        """A tritonclient call with its deadline (which bounds all its attempts)."""
        timeout = timeout_s or self.options.inference_timeout_s
        return functools.partial(getattr(self._client, method), *args, client_timeout=timeout, **kwargs)

    def _error(self, exc: Exception) -> TritonClientError:
        return from_triton_exception(exc, self.model_name, tls=self.options.tls)

    def _config_rpc(self) -> Callable[[], Any]:
        return self._rpc("get_model_config", self.model_name, as_json=True)

    def _set_info(self, response: dict) -> ServedModelInfo:
        self._info = ServedModelInfo.from_config(response["config"])
        return self._info

    def _metadata_rpc(self) -> Callable[[], Any]:
        return self._rpc("get_model_metadata", self.model_name, as_json=True)

    def _index_rpc(self) -> Callable[[], Any]:
        return self._rpc("get_model_repository_index", as_json=True)

    def _statistics_rpc(self) -> Callable[[], Any]:
        return self._rpc("get_inference_statistics", self.model_name, as_json=True)

    def _live_rpc(self) -> Callable[[], Any]:
        return self._rpc("is_server_live")

    def _ready_rpcs(self) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """Ready means the model and the server both are (a server shutting down keeps its models a while)."""
        return self._rpc("is_model_ready", self.model_name), self._rpc("is_server_ready")

    def _infer_call(
        self,
        info: ServedModelInfo,
        images: Any,
        threshold: float | None,
        annotate: bool,
        top_k: int | None,
        timeout_s: float | None,
    ) -> InferCall:
        """Payloads, inputs and parameters of one infer(), checked before anything is sent."""
        start = time.perf_counter()
        payloads, is_batch = prepare_payloads(images)
        parameters = build_parameters(threshold, top_k, info)
        groups = request_groups(payloads, info)
        rpcs = [self._rpc("infer", self.model_name, build_inputs([payloads[i] for i in group], self._tensors),
                          parameters=parameters, timeout_s=timeout_s, compression_algorithm=self.options.compression)
                for group in groups]
        latency = InferLatency(imload=seconds_since(start))
        return InferCall(rpcs, groups, info, payloads, is_batch, annotate, latency, sent=time.perf_counter())
