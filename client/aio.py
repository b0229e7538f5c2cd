"""AsyncTritonInferModel: the asyncio twin of TritonInferModel (tritonclient.grpc.aio)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import tritonclient.grpc.aio as aioclient
from tritonclient.utils import InferenceServerException

from focoos.ports import FocoosDetections, InferLatency, seconds_since

from .errors import RETRYABLE, TritonClientError, from_triton_exception
from .options import ClientOptions
from .protocol import ServedModelInfo, build_inputs, build_parameters, parse_response, prepare_payloads


class AsyncTritonInferModel:
    """Example:
    >>> async with AsyncTritonInferModel("localhost:8001", "fai-detr-m-coco") as model:
    ...     results = await asyncio.gather(*(model.infer(p) for p in paths))
    """

    def __init__(self, url: str, model_name: str, *, options: ClientOptions | None = None, **option_fields: Any):
        self.url = url
        self.model_name = model_name
        self.options = options or ClientOptions(**option_fields)
        self._client = aioclient.InferenceServerClient(url, **self.options.client_kwargs())
        self._info: ServedModelInfo | None = None

    async def get_info(self) -> ServedModelInfo:
        if self._info is None:
            config = await self._call(self._client.get_model_config, self.model_name, as_json=True,
                                      client_timeout=self.options.inference_timeout_s)
            self._info = ServedModelInfo.from_config(config["config"])
        return self._info

    async def ready(self) -> bool:
        try:
            return bool(await self._client.is_model_ready(self.model_name))
        except InferenceServerException:
            return False

    async def infer(
        self,
        images: Any,
        threshold: float = 0.5,
        annotate: bool = False,
        *,
        top_k: int | None = None,
        timeout_s: float | None = None,
    ) -> FocoosDetections | list[FocoosDetections]:
        """Same contract as TritonInferModel.infer."""
        info = await self.get_info()
        start = time.perf_counter()
        payloads, is_batch = prepare_payloads(images)
        parameters = build_parameters(threshold, top_k, info)
        inputs = build_inputs(payloads)
        latency = InferLatency(imload=seconds_since(start))
        start = time.perf_counter()
        result = await self._call(
            self._client.infer, self.model_name, inputs, parameters=parameters,
            client_timeout=timeout_s or self.options.inference_timeout_s,
            compression_algorithm=self.options.compression,
        )
        latency.inference = seconds_since(start)
        start = time.perf_counter()
        detections = parse_response(result, info, payloads, annotate, latency)
        latency.postprocess = seconds_since(start)
        return detections if is_batch else detections[0]

    __call__ = infer

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        delay = self.options.backoff_s
        for attempt in range(self.options.max_retries + 1):
            try:
                return await fn(*args, **kwargs)
            except InferenceServerException as exc:
                error = from_triton_exception(exc, self.model_name)
                if not isinstance(error, RETRYABLE) or attempt == self.options.max_retries:
                    raise error from None
            await asyncio.sleep(delay)
            delay *= 2
        raise TritonClientError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncTritonInferModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
