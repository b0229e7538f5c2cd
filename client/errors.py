"""Typed client errors carrying the server's message; raw gRPC exceptions never reach users."""

from __future__ import annotations

import focoos.errors as library
from focoos.processing.transport import SERVER_BUSY


class TritonClientError(library.FocoosError):
    """Base class of the client's errors; `status` holds the gRPC status name when there is one."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelNotFoundError(TritonClientError, library.ModelNotFoundError):
    """The server does not serve (or has not loaded) the requested model."""


class InvalidInputError(TritonClientError, library.InvalidInputError):
    """The server or the client refused the input; retrying the same call cannot help."""


# The names of earlier releases, kept so that code catching them goes on working.
ModelNotFound = ModelNotFoundError
InvalidInput = InvalidInputError


class ServerUnavailable(TritonClientError, ConnectionError):
    """The server cannot be reached or is shutting down; raised once the retry policy gave up (see options)."""


class ServerBusy(TritonClientError):
    """The server refused the call for lack of capacity before running it: the ensemble admits no more
    requests at once (UNAVAILABLE "server busy: ..."), a queue is full (UNAVAILABLE "Exceeds maximum
    queue size") or RESOURCE_EXHAUSTED. Back off and call again."""


class TLSError(TritonClientError, ConnectionError):
    """TLS failed: a certificate missing, unreadable, expired or not trusted by the other side."""


class PermissionDenied(TritonClientError, PermissionError):
    """The server restricts this API (model control, shared memory) to callers that send its key."""


class DeadlineExceeded(TritonClientError, TimeoutError):
    """The call did not finish within its timeout."""


# Failures that may pass when the same call is made again later (a load generator backs off on them).
TRANSIENT = (ServerUnavailable, ServerBusy)


# What a server that refuses our client certificate (or our plaintext) says: it closes the socket.
_SOCKET_CLOSED = "socket closed"
_REFUSED_CLIENT_CERT = (
    "the server closed the connection during the TLS handshake: it wants a client certificate it trusts "
    "(mutual TLS) and got none, an expired one, or one its CA did not sign"
)
# Triton's HTTP status codes as the gRPC status names they stand for (its HTTP server maps one to the other).
_HTTP_CODES = {"400": "INVALID_ARGUMENT", "403": "PERMISSION_DENIED", "404": "NOT_FOUND", "409": "ALREADY_EXISTS",
               "500": "INTERNAL", "503": "UNAVAILABLE", "504": "DEADLINE_EXCEEDED"}


def from_triton_exception(exc: Exception, model_name: str, tls: bool = False) -> TritonClientError:
    """Map a tritonclient InferenceServerException (or grpc error) to our typed error; `tls`: the channel uses TLS."""
    status = str(exc.status() if hasattr(exc, "status") and callable(exc.status) else "") or None
    message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    message = message or str(exc)
    code = (status or "").rsplit(".", 1)[-1]
    code = _HTTP_CODES.get(code, code)
    lowered = message.lower()
    if "wrong_version_number" in lowered:  # the answer to our TLS hello was not TLS
        return TLSError(f"the server does not speak TLS (it answered in plaintext): connect without TLS, or turn "
                        f"TLS on at the server: {message}", status)
    if "hostname verification" in lowered:
        return TLSError(f"the server's certificate does not name the host the client dialled: dial a name (or IP) "
                        f"that its subjectAltName lists, or reissue it for this one: {message}", status)
    if "handshake failed" in lowered:  # our side refused the server's certificate
        return TLSError(f"TLS handshake failed, the server's certificate was refused: {message}", status)
    if tls and _SOCKET_CLOSED in lowered and "failed to connect" in lowered:
        return TLSError(f"{_REFUSED_CLIENT_CERT}: {message}", status)
    if "exceeds maximum queue size" in lowered or SERVER_BUSY in lowered:
        return ServerBusy(f"model '{model_name}' is at capacity, try again later: {message}", status)
    if code == "PERMISSION_DENIED" or "protocol is restricted" in lowered:
        return PermissionDenied(f"the server restricts this call to callers with its key: {message}", status)
    if "has no available versions" in message:  # unloading during shutdown or reload: transient
        return ServerUnavailable(f"model '{model_name}' is not loaded right now: {message}", status)
    if code == "NOT_FOUND" or "unknown model" in message or "is not found" in message:
        return ModelNotFoundError(f"model '{model_name}': {message}", status)
    if code == "INVALID_ARGUMENT":
        return InvalidInputError(message, status)
    if code == "DEADLINE_EXCEEDED" or "Deadline Exceeded" in message:
        return DeadlineExceeded(f"call to '{model_name}' exceeded its deadline: {message}", status)
    if code == "RESOURCE_EXHAUSTED":
        return ServerBusy(message, status)
    if code in ("UNAVAILABLE", "CANCELLED", "") or "failed to connect" in lowered:
        hint = " (if the server uses TLS, so must the client)" if _SOCKET_CLOSED in lowered else ""
        return ServerUnavailable(f"server unavailable{hint}: {message}", status)
    return TritonClientError(message, status)
