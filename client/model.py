"""TritonInferModel: a served focoos ensemble with the same `infer` contract as a local model."""

from __future__ import annotations

import time
from typing import Any

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from focoos.ports import FocoosDetections, InferLatency, seconds_since

from .errors import RETRYABLE, TritonClientError, from_triton_exception
from .options import ClientOptions
from .protocol import ServedModelInfo, build_inputs, build_parameters, parse_response, prepare_payloads


class TritonInferModel:
    """Call a model served by Triton over gRPC; results are FocoosDetections in original pixels.

    Example:
        >>> with TritonInferModel("localhost:8001", model_name="fai-detr-m-coco") as model:
        ...     det = model.infer("street.jpg", threshold=0.4, annotate=True)
    """

    def __init__(self, url: str, model_name: str, *, options: ClientOptions | None = None, **option_fields: Any):
        self.url = url
        self.model_name = model_name
        self.options = options or ClientOptions(**option_fields)
        self._client = grpcclient.InferenceServerClient(url, **self.options.client_kwargs())
        self._info: ServedModelInfo | None = None

    # -- discovery
    @property
    def info(self) -> ServedModelInfo:
        """Read once from the ensemble's config on the server."""
        if self._info is None:
            config = self._call(self._client.get_model_config, self.model_name, as_json=True,
                                client_timeout=self.options.inference_timeout_s)
            self._info = ServedModelInfo.from_config(config["config"])
        return self._info

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def im_size(self) -> tuple[int, int]:
        return self.info.im_size

    def live(self) -> bool:
        return self._health(self._client.is_server_live)

    def ready(self) -> bool:
        return self._health(self._client.is_model_ready, self.model_name) and self._health(self._client.is_server_ready)

    def _health(self, fn: Any, *args: Any) -> bool:
        try:
            return bool(fn(*args, client_timeout=self.options.inference_timeout_s))
        except InferenceServerException:
            return False

    def metadata(self) -> dict:
        return self._call(self._client.get_model_metadata, self.model_name, as_json=True)

    def list_models(self) -> list[str]:
        index = self._call(self._client.get_model_repository_index, as_json=True)
        return sorted(m["name"] for m in index.get("models", []) if m.get("state") == "READY")

    def statistics(self) -> dict:
        """The server's per-model statistics (queue, compute input/infer/output times)."""
        return self._call(self._client.get_inference_statistics, self.model_name, as_json=True)

    # -- inference
    def infer(
        self,
        images: Any,
        threshold: float = 0.5,
        annotate: bool = False,
        *,
        top_k: int | None = None,
        timeout_s: float | None = None,
    ) -> FocoosDetections | list[FocoosDetections]:
        """Detect in one image or a list (sent as one batched request).

        Images: path, http(s) URL, bytes, PIL, numpy HWC RGB, torch CHW. Encoded files and bytes
        are sent as they are; pixels are sent raw.
        """
        start = time.perf_counter()
        payloads, is_batch = prepare_payloads(images)
        parameters = build_parameters(threshold, top_k, self.info)
        inputs = build_inputs(payloads)
        latency = InferLatency(imload=seconds_since(start))
        start = time.perf_counter()
        result = self._call(
            self._client.infer, self.model_name, inputs, parameters=parameters,
            client_timeout=timeout_s or self.options.inference_timeout_s,
            compression_algorithm=self.options.compression,
        )
        latency.inference = seconds_since(start)
        start = time.perf_counter()
        detections = parse_response(result, self.info, payloads, annotate, latency)
        latency.postprocess = seconds_since(start)
        return detections if is_batch else detections[0]

    __call__ = infer

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, mapping errors to typed ones and retrying UNAVAILABLE / RESOURCE_EXHAUSTED."""
        delay = self.options.backoff_s
        for attempt in range(self.options.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except InferenceServerException as exc:
                error = from_triton_exception(exc, self.model_name)
                if not isinstance(error, RETRYABLE) or attempt == self.options.max_retries:
                    raise error from None
            time.sleep(delay)
            delay *= 2
        raise TritonClientError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TritonInferModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
