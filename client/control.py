"""Model control over gRPC: load, unload and list the models of a server in explicit model-control mode,
read the config it serves and make a warm-up call (what a swap checks).

A server started with an admin key (`TritonServer(admin_key=...)`, or `focoos serve` with the key in
the FOCOOS_ADMIN_KEY environment variable, never on the command line where `ps` shows it) keeps these
calls, and the shared-memory ones, to callers that send the key: Triton's restricted protocols, which
read it from the `triton-grpc-protocol-<ADMIN_KEY_NAME>` header.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from focoos.ports import FocoosDetections

from .errors import from_triton_exception
from .model import TritonInferModel
from .options import ClientOptions
from .protocol import ready_models, resolve_options

ADMIN_KEY_NAME = "focoos-admin-key"
RESTRICTED_PROTOCOLS = ("model-repository", "shared-memory")
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # Triton's prefix of a restricted gRPC protocol's header
DEFAULT_LOAD_TIMEOUT_S = 1800.0  # as long as a Kubernetes startup probe waits for TensorRT engines
WARM_UP_HWC = (64, 64, 3)  # the synthetic image of a warm-up call: small, any size the preprocess step resizes


def admin_headers(admin_key: str | None) -> dict[str, str] | None:
    """The gRPC headers that carry the admin key (None without one)."""
    return {GRPC_HEADER_PREFIX + ADMIN_KEY_NAME: admin_key} if admin_key else None


class ModelControl:
    """Load/unload calls with the admin key and the same channel options (TLS included) as inference."""

    def __init__(self, url: str, *, admin_key: str | None = None, options: ClientOptions | None = None,
                 load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S, **option_fields: Any) -> None:
        """load_timeout_s: how long a load call may take (warm-up building TensorRT engines takes minutes)."""
        self.url = url
        self.load_timeout_s = load_timeout_s
        self.options = resolve_options(type(self).__name__, options, option_fields)
        self._headers = admin_headers(admin_key)
        self._client = grpcclient.InferenceServerClient(url, **self.options.client_kwargs())

    def _call(self, method: str, name: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, headers=self._headers,
                                                 client_timeout=timeout_s or self.options.inference_timeout_s, **kwargs)
        except InferenceServerException as exc:
            raise from_triton_exception(exc, name, tls=self.options.tls) from None

    def load(self, name: str, *, config: str | None = None, files: dict[str, bytes] | None = None) -> None:
        """(Re)load a model from the repository: Triton loads what changed, then unloads what it replaced.

        With `config` (JSON) and `files` ({"file:1/model.onnx": bytes}), the model is loaded from those
        instead, under a name the repository need not have: a trial load that leaves the repository alone.
        """
        self._call("load_model", name, name, config=config, files=files, timeout_s=self.load_timeout_s)

    def unload(self, name: str) -> None:
        self._call("unload_model", name, name, timeout_s=self.load_timeout_s)

    def index(self) -> list[dict]:
        """Every model version the server knows, with its state (READY, UNAVAILABLE and why)."""
        return self._call("get_model_repository_index", "*", as_json=True).get("models", [])

    def ready_models(self) -> list[str]:
        return ready_models({"models": self.index()})

    def ready_versions(self, name: str) -> list[int]:
        return sorted(int(m["version"]) for m in self.index() if m["name"] == name and m.get("state") == "READY")

    def config(self, name: str) -> dict:
        """The config of the version the server answers with (JSON form); ModelNotFoundError when none is loaded."""
        return self._call("get_model_config", name, name, as_json=True)["config"]

    def warm_up(self, name: str) -> FocoosDetections:
        """One call with a small synthetic image through the ensemble, as a client makes it: proves it answers."""
        with TritonInferModel(self.url, name, options=self.options) as client:
            return client.infer(np.zeros(WARM_UP_HWC, dtype=np.uint8))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ModelControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
