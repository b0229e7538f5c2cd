"""AsyncTritonInferModel: the asyncio twin of TritonInferModel (tritonclient.grpc.aio); all but the
awaiting is shared with it (focoos.client.protocol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tritonclient.grpc.aio as aioclient
from tritonclient.utils import InferenceServerException

from focoos.ports import FocoosDetections

from .errors import TritonClientError
from .http import is_http_url
from .options import ClientOptions
from .protocol import INFER_OPTIONS, ClientCore, ServedModelInfo, check_options, ready_models


class AsyncTritonInferModel(ClientCore):
    """Same options, retries and results as TritonInferModel, for asyncio.

    Example:
        >>> async with AsyncTritonInferModel("localhost:8001", "fai-detr-m-coco") as model:
        ...     results = await asyncio.gather(*(model.infer(p) for p in paths))
    """

    def __init__(self, url: str, model_name: str, *, options: ClientOptions | None = None, **option_fields: Any):
        if is_http_url(url):
            raise TritonClientError(f"AsyncTritonInferModel speaks gRPC: pass host:port (Triton's gRPC port, 8001 by "
                                    f"default), not {url}; TritonInferModel also takes http:// URLs")
        super().__init__(aioclient.InferenceServerClient, url, model_name, options, option_fields)

    async def _call(self, rpc: Callable[[], Any]) -> Any:
        try:
            return await rpc()
        except InferenceServerException as exc:
            raise self._error(exc) from None

    @staticmethod
    async def _probe(rpc: Callable[[], Any]) -> bool:
        try:
            return bool(await rpc())
        except InferenceServerException:
            return False

    async def get_info(self) -> ServedModelInfo:
        """Read once from the ensemble's config on the server."""
        return self._info or self._set_info(await self._call(self._config_rpc()))

    async def live(self) -> bool:
        return await self._probe(self._live_rpc())

    async def ready(self) -> bool:
        for rpc in self._ready_rpcs():
            if not await self._probe(rpc):
                return False
        return True

    async def metadata(self) -> dict:
        return await self._call(self._metadata_rpc())

    async def list_models(self) -> list[str]:
        return ready_models(await self._call(self._index_rpc()))

    async def statistics(self) -> dict:
        return await self._call(self._statistics_rpc())

    async def infer(
        self,
        images: Any,
        threshold: float | None = None,
        annotate: bool = False,
        *,
        top_k: int | None = None,
        timeout_s: float | None = None,
        **unknown: Any,
    ) -> FocoosDetections | list[FocoosDetections]:
        """Same contract as TritonInferModel.infer."""
        check_options("infer()", unknown, INFER_OPTIONS)
        call = self._infer_call(await self.get_info(), images, threshold, annotate, top_k, timeout_s)
        return call.finish([await self._call(rpc) for rpc in call.rpcs])

    __call__ = infer

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncTritonInferModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
