"""Typed client errors carrying the server's message; raw gRPC exceptions never reach users."""

from __future__ import annotations

from focoos.errors import FocoosError, InvalidInputError


class TritonClientError(FocoosError):
    """Base class of the client's errors; `status` holds the gRPC status name when there is one."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelNotFound(TritonClientError, LookupError):
    """The server does not serve (or has not loaded) the requested model."""


class InvalidInput(TritonClientError, InvalidInputError):
    """The server or the client refused the input; retrying the same call cannot help."""


class ServerUnavailable(TritonClientError, ConnectionError):
    """The server cannot be reached or is shutting down; raised once the retry policy gave up (see options)."""


class ServerBusy(TritonClientError):
    """RESOURCE_EXHAUSTED: the server or the channel refused the call for lack of resources (not retried)."""


class DeadlineExceeded(TritonClientError, TimeoutError):
    """The call did not finish within its timeout."""


# Failures that may pass when the same call is made again later (a load generator backs off on them).
TRANSIENT = (ServerUnavailable, ServerBusy)


def from_triton_exception(exc: Exception, model_name: str) -> TritonClientError:
    """Map a tritonclient InferenceServerException (or grpc error) to our typed error."""
    status = str(exc.status() if hasattr(exc, "status") and callable(exc.status) else "") or None
    message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    message = message or str(exc)
    code = (status or "").rsplit(".", 1)[-1]
    if "has no available versions" in message:  # unloading during shutdown or reload: transient
        return ServerUnavailable(f"model '{model_name}' is not loaded right now: {message}", status)
    if code == "NOT_FOUND" or "unknown model" in message or "is not found" in message:
        return ModelNotFound(f"model '{model_name}': {message}", status)
    if code == "INVALID_ARGUMENT":
        return InvalidInput(message, status)
    if code == "DEADLINE_EXCEEDED" or "Deadline Exceeded" in message:
        return DeadlineExceeded(f"call to '{model_name}' exceeded its deadline: {message}", status)
    if code == "RESOURCE_EXHAUSTED":
        return ServerBusy(message, status)
    if code in ("UNAVAILABLE", "CANCELLED", "") or "failed to connect" in message.lower():
        return ServerUnavailable(f"server unavailable: {message}", status)
    return TritonClientError(message, status)
