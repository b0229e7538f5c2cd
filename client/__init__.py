"""focoos.client: call served focoos models over gRPC with InferModel semantics. Never imports torch."""

from .aio import AsyncTritonInferModel
from .errors import (
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    PermissionDenied,
    ServerBusy,
    ServerUnavailable,
    TLSError,
    TritonClientError,
)
from .model import TritonInferModel
from .options import ClientOptions
from .protocol import ServedModelInfo

__all__ = [
    "AsyncTritonInferModel",
    "ClientOptions",
    "DeadlineExceeded",
    "InvalidInput",
    "ModelNotFound",
    "PermissionDenied",
    "ServedModelInfo",
    "ServerBusy",
    "ServerUnavailable",
    "TLSError",
    "TritonClientError",
    "TritonInferModel",
]
