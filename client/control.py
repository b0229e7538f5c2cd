"""Model control over gRPC: load, unload and list the models of a server in explicit model-control mode.

A server started with an admin key (`TritonServer(admin_key=...)`, `focoos serve --admin-key`) keeps
these calls, and the shared-memory ones, to callers that send the key: Triton's restricted protocols,
which read it from the `triton-grpc-protocol-<ADMIN_KEY_NAME>` header.
"""

from __future__ import annotations

from typing import Any

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from .errors import from_triton_exception
from .options import ClientOptions
from .protocol import ready_models, resolve_options

ADMIN_KEY_NAME = "focoos-admin-key"
RESTRICTED_PROTOCOLS = ("model-repository", "shared-memory")
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # Triton's prefix of a restricted gRPC protocol's header


def admin_headers(admin_key: str | None) -> dict[str, str] | None:
    return {GRPC_HEADER_PREFIX + ADMIN_KEY_NAME: admin_key} if admin_key else None


class ModelControl:
    """Load/unload calls with the admin key and the same channel options (TLS included) as inference."""

    def __init__(self, url: str, *, admin_key: str | None = None, options: ClientOptions | None = None,
                 **option_fields: Any) -> None:
        self.url = url
        self.options = resolve_options(type(self).__name__, options, option_fields)
        self._headers = admin_headers(admin_key)
        self._client = grpcclient.InferenceServerClient(url, **self.options.client_kwargs())

    def _call(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, headers=self._headers,
                                                 client_timeout=self.options.inference_timeout_s, **kwargs)
        except InferenceServerException as exc:
            raise from_triton_exception(exc, name, tls=self.options.tls) from None

    def load(self, name: str) -> None:
        """(Re)load a model from the repository: Triton loads what changed, then unloads what it replaced."""
        self._call("load_model", name, name)

    def unload(self, name: str) -> None:
        self._call("unload_model", name, name)

    def index(self) -> list[dict]:
        """Every model version the server knows, with its state (READY, UNAVAILABLE and why)."""
        return self._call("get_model_repository_index", "*", as_json=True).get("models", [])

    def ready_models(self) -> list[str]:
        return ready_models({"models": self.index()})

    def ready_versions(self, name: str) -> list[int]:
        return sorted(int(m["version"]) for m in self.index() if m["name"] == name and m.get("state") == "READY")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ModelControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
