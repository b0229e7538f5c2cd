"""focoos.client: call served focoos models over gRPC with InferModel semantics. Never imports torch.

The errors load with the package; the clients load on first use, so a caller that only needs the
errors or the TLS helpers (`focoos.client.tls`, the CLI's option parsing) does not import gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    DeadlineExceeded,
    InvalidInput,
    InvalidInputError,
    ModelNotFound,
    ModelNotFoundError,
    PermissionDenied,
    ServerBusy,
    ServerUnavailable,
    TLSError,
    TritonClientError,
)

if TYPE_CHECKING:
    from .aio import AsyncTritonInferModel
    from .model import TritonInferModel
    from .options import ClientOptions
    from .protocol import ServedModelInfo

_LAZY = {
    "AsyncTritonInferModel": ".aio",
    "ClientOptions": ".options",
    "ServedModelInfo": ".protocol",
    "TritonInferModel": ".model",
}

__all__ = [
    "AsyncTritonInferModel",
    "ClientOptions",
    "DeadlineExceeded",
    "InvalidInput",
    "InvalidInputError",
    "ModelNotFound",
    "ModelNotFoundError",
    "PermissionDenied",
    "ServedModelInfo",
    "ServerBusy",
    "ServerUnavailable",
    "TLSError",
    "TritonClientError",
    "TritonInferModel",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
