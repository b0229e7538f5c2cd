"""TritonInferModel: a served focoos ensemble with the same `infer` contract as a local model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from focoos.ports import FocoosDetections

from .options import ClientOptions
from .protocol import INFER_OPTIONS, ClientCore, ServedModelInfo, check_options, ready_models


class TritonInferModel(ClientCore):
    """Call a model served by Triton; results are FocoosDetections in original pixels.

    `url`: host:port of Triton's gRPC endpoint, or `http://host:8000` for its HTTP/REST one (same calls and
    answers; for networks that only pass HTTP, see `focoos.client.http`). Options are
    `options=ClientOptions(...)` or its fields as keywords (`max_retries=0`); over gRPC, calls that find the
    server UNAVAILABLE are retried by gRPC's retry policy (see `focoos.client.options`).

    Example:
        >>> with TritonInferModel("localhost:8001", model_name="fai-detr-m-coco") as model:
        ...     det = model.infer("street.jpg", threshold=0.4, annotate=True)
    """

    def __init__(self, url: str, model_name: str, *, options: ClientOptions | None = None, **option_fields: Any):
        super().__init__(grpcclient.InferenceServerClient, url, model_name, options, option_fields)

    def _call(self, rpc: Callable[[], Any]) -> Any:
        try:
            return rpc()
        except InferenceServerException as exc:
            raise self._error(exc) from None

    @staticmethod
    def _probe(rpc: Callable[[], Any]) -> bool:
        try:
            return bool(rpc())
        except InferenceServerException:
            return False

    # -- discovery
    @property
    def info(self) -> ServedModelInfo:
        """Read once from the ensemble's config on the server."""
        return self._info or self._set_info(self._call(self._config_rpc()))

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
        return self._probe(self._live_rpc())

    def ready(self) -> bool:
        return all(self._probe(rpc) for rpc in self._ready_rpcs())

    def metadata(self) -> dict:
        return self._call(self._metadata_rpc())

    def list_models(self) -> list[str]:
        return ready_models(self._call(self._index_rpc()))

    def statistics(self) -> dict:
        """The server's per-model statistics (queue, compute input/infer/output times)."""
        return self._call(self._statistics_rpc())

    # -- inference
    def infer(
        self,
        images: Any,
        threshold: float | None = None,
        annotate: bool = False,
        *,
        top_k: int | None = None,
        timeout_s: float | None = None,
        **unknown: Any,
    ) -> FocoosDetections | list[FocoosDetections]:
        """Detect in one image or a list (sent as one batched request; one per image size for a model served
        at each image's own size).

        Images: path, http(s) URL, bytes, PIL, numpy HWC RGB, torch CHW. Encoded files and bytes
        are sent as they are; pixels are sent raw. `threshold` and `top_k` default to the served
        model's (its config); `timeout_s` to `inference_timeout_s`. A misspelt option is a TypeError.
        """
        check_options("infer()", unknown, INFER_OPTIONS)
        call = self._infer_call(self.info, images, threshold, annotate, top_k, timeout_s)
        return call.finish([self._call(rpc) for rpc in call.rpcs])

    __call__ = infer

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TritonInferModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
