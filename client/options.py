"""Connection options: timeouts, retries, TLS, keepalive, message sizes, compression."""

from __future__ import annotations

from pydantic import BaseModel, Field

DEFAULT_INFERENCE_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_S = 0.2
MAX_MESSAGE_BYTES = 2**31 - 1


class ClientOptions(BaseModel):
    """How the client talks to the server. Every field has a safe default."""

    inference_timeout_s: float = Field(DEFAULT_INFERENCE_TIMEOUT_S, gt=0)
    max_retries: int = Field(DEFAULT_MAX_RETRIES, ge=0, description="retries on UNAVAILABLE / RESOURCE_EXHAUSTED")
    backoff_s: float = Field(DEFAULT_BACKOFF_S, ge=0, description="first retry delay; doubles each retry")
    ssl: bool = False
    root_certificates: str | None = None
    private_key: str | None = None
    certificate_chain: str | None = None
    keepalive_time_ms: int = 2**31 - 1
    keepalive_timeout_ms: int = 20_000
    keepalive_permit_without_calls: bool = False
    max_send_message_bytes: int = MAX_MESSAGE_BYTES
    max_receive_message_bytes: int = MAX_MESSAGE_BYTES
    max_reconnect_backoff_ms: int = Field(1000, gt=0, description="cap on gRPC's reconnect backoff after an outage")
    compression: str | None = Field(None, pattern="^(gzip|deflate)$")

    def channel_args(self) -> list[tuple[str, int | bool]]:
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
        ]

    def client_kwargs(self) -> dict:
        return {
            "ssl": self.ssl,
            "root_certificates": self.root_certificates,
            "private_key": self.private_key,
            "certificate_chain": self.certificate_chain,
            "channel_args": self.channel_args(),
        }
