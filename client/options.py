"""Connection options: timeouts, retries, TLS, keepalive, message sizes, compression.

Retries are gRPC's own: a `retryPolicy` in the channel's service config, the same for the sync and
the asyncio client. Only `UNAVAILABLE` is retried: the server was not reached (down, restarting, not
listening yet) or refused the call before running it, so a second attempt cannot run it twice, and
inference has no side effects anyway. Never retried: INVALID_ARGUMENT and NOT_FOUND (the same call
gets the same answer; a model being unloaded also answers NOT_FOUND, which gRPC cannot tell from a
model that does not exist), DEADLINE_EXCEEDED (the deadline bounds every attempt together),
RESOURCE_EXHAUSTED (in gRPC mostly a message over the size limit). Health probes are never retried:
they answer now.

Triton also answers UNAVAILABLE when a model's queue is full ("Exceeds maximum queue size") or a
protocol is restricted, and gRPC cannot tell those apart by status. gRPC's retry throttling bounds
what that costs: every failed attempt spends a token of 20, every success earns a tenth back, and
below half the tokens the channel stops retrying. A restart seen by a few calls (each failing up to
max_retries + 1 times) stays within it; an overloaded server gets no retry storm, and once ten
attempts have failed its callers get `ServerBusy` at once.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_INFERENCE_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_S = 0.2
MAX_MESSAGE_BYTES = 2**31 - 1
GRPC_SERVICE = "inference.GRPCInferenceService"
GRPC_MAX_ATTEMPTS = 5  # gRPC clamps a retry policy's maxAttempts to 5 (and logs an error above it)
RETRIED_METHODS = ("ModelInfer", "ModelConfig", "ModelMetadata", "RepositoryIndex", "ModelStatistics")
RETRIED_STATUS_CODES = ("UNAVAILABLE",)
RETRY_THROTTLING = {"maxTokens": 20, "tokenRatio": 0.1}  # gRPC's retry throttling, see the module docstring


def _duration(seconds: float) -> str:
    """A protobuf JSON duration, as the service config wants it."""
    return f"{seconds:.9f}s"


class ClientOptions(BaseModel):
    """How the client talks to the server. Every field has a safe default; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inference_timeout_s: float = Field(DEFAULT_INFERENCE_TIMEOUT_S, gt=0,
                                       description="deadline of a call, its retries included")
    max_retries: int = Field(DEFAULT_MAX_RETRIES, ge=0, le=GRPC_MAX_ATTEMPTS - 1,
                             description="attempts after the first when the status is UNAVAILABLE")
    backoff_s: float = Field(DEFAULT_BACKOFF_S, gt=0,
                             description="first retry delay; doubles each retry (gRPC jitters it by ±20%)")
    ssl: bool = Field(False, description="TLS; implied by any of the three files below")
    root_certificates: str | None = Field(None, description="PEM CA bundle that signed the server's certificate "
                                                            "(default: the system's)")
    private_key: str | None = Field(None, description="PEM key of the client certificate (mutual TLS)")
    certificate_chain: str | None = Field(None, description="PEM client certificate (mutual TLS)")
    keepalive_time_ms: int = 2**31 - 1
    keepalive_timeout_ms: int = 20_000
    keepalive_permit_without_calls: bool = False
    max_send_message_bytes: int = MAX_MESSAGE_BYTES
    max_receive_message_bytes: int = MAX_MESSAGE_BYTES
    max_reconnect_backoff_ms: int = Field(1000, gt=0, description="cap on gRPC's reconnect backoff after an outage")
    compression: str | None = Field(None, pattern="^(gzip|deflate)$")

    def service_config(self) -> str:
        """The gRPC service config: the retry policy of the calls worth retrying (none when max_retries is 0)."""
        method: dict = {"name": [{"service": GRPC_SERVICE, "method": name} for name in RETRIED_METHODS]}
        if self.max_retries:
            method["retryPolicy"] = {
                "maxAttempts": self.max_retries + 1,
                "initialBackoff": _duration(self.backoff_s),
                "maxBackoff": _duration(self.backoff_s * 2 ** (self.max_retries - 1)),
                "backoffMultiplier": 2,
                "retryableStatusCodes": list(RETRIED_STATUS_CODES),
            }
        return json.dumps({"methodConfig": [method], "retryThrottling": RETRY_THROTTLING})

    @property
    def tls(self) -> bool:
        return self.ssl or any((self.root_certificates, self.private_key, self.certificate_chain))

    def channel_args(self) -> list[tuple[str, int | bool | str]]:
        """All channel arguments at once: tritonclient replaces its defaults when any are passed."""
        return [
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", self.keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", 2),
            ("grpc.initial_reconnect_backoff_ms", min(200, self.max_reconnect_backoff_ms)),
            ("grpc.max_reconnect_backoff_ms", self.max_reconnect_backoff_ms),
            ("grpc.service_config", self.service_config()),
        ]

    def client_kwargs(self) -> dict:
        return {
            "ssl": self.tls,
            "root_certificates": self.root_certificates,
            "private_key": self.private_key,
            "certificate_chain": self.certificate_chain,
            "channel_args": self.channel_args(),
        }
