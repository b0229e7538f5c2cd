"""Triton's HTTP/REST endpoint behind the gRPC client's method names, so one client core serves both.

For callers that reach the server only over HTTP (a proxy, a firewall, `url="http://host:8000"`). The
answers are the same tensors; what differs is hidden here: tritonclient.http's client is not thread safe
(it runs on gevent), so each thread gets its own, and a call's deadline is a gevent timeout, after which
that thread's connection is dropped (its state is unknown). Calls are not retried (gRPC's retry policy
has no HTTP twin). `https://` is for a TLS-terminating proxy in front of Triton, whose HTTP has no TLS.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import threading
from typing import Any

from tritonclient.utils import InferenceServerException

from .errors import TLSError
from .options import ClientOptions

HTTP_SCHEMES = ("http://", "https://")


def is_http_url(url: str) -> bool:
    return url.startswith(HTTP_SCHEMES)


def _http_module() -> Any:
    try:
        import tritonclient.http as httpclient
    except ImportError as exc:  # geventhttpclient comes with tritonclient[http]
        raise ImportError(f"an http:// URL needs tritonclient's HTTP client: pip install 'tritonclient[http]' ({exc})"
                          ) from exc
    return httpclient


class HttpTritonClient:
    """tritonclient.http with tritonclient.grpc's signatures (`client_timeout`, `as_json`) and JSON shapes."""

    def __init__(self, url: str, options: ClientOptions) -> None:
        self.module = _http_module()
        scheme, _, address = url.partition("://")
        self._address, self._https, self._options = address.rstrip("/"), scheme == "https", options
        if options.tls and not self._https:
            raise TLSError(f"TLS options with the plain URL {url}: use https:// (a TLS proxy in front of Triton) "
                           "or gRPC (host:port), never send them in the clear")
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()

    def _ssl_context(self) -> Any:
        import gevent.ssl

        context = gevent.ssl.create_default_context(cafile=self._options.root_certificates)
        context.check_hostname = False  # geventhttpclient matches the host name itself, after the handshake
        if self._options.certificate_chain:
            context.load_cert_chain(self._options.certificate_chain, self._options.private_key)
        return context

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            timeout = self._options.inference_timeout_s
            client = self.module.InferenceServerClient(
                self._address, ssl=self._https, ssl_context_factory=self._ssl_context if self._https else None,
                connection_timeout=timeout, network_timeout=timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _drop(self, client: Any) -> None:
        self._local.client = None
        with self._lock:
            self._clients.remove(client)
        with contextlib.suppress(Exception):
            client.close()

    def _call(self, method: str, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        """One call with a deadline; connection failures become the UNAVAILABLE a gRPC client would see."""
        import gevent

        client = self._client()
        timeout = gevent.Timeout(client_timeout or self._options.inference_timeout_s)
        timeout.start()
        try:
            return getattr(client, method)(*args, **kwargs)
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._drop(client)
            raise InferenceServerException(f"Deadline Exceeded after {timeout.seconds}s", "DEADLINE_EXCEEDED"
                                           ) from None
        except ssl.SSLCertVerificationError as exc:  # worded as gRPC words it, so both map to the same TLSError
            self._drop(client)
            raise InferenceServerException(f"TLS handshake failed with {self._address}: {exc}", "UNAVAILABLE"
                                           ) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, unknown host, TLS, closed early
            self._drop(client)
            raise InferenceServerException(f"failed to connect to {self._address}: {exc}", "UNAVAILABLE") from None
        finally:
            timeout.close()

    def is_server_live(self, client_timeout: float | None = None) -> bool:
        return self._call("is_server_live", client_timeout=client_timeout)

    def is_server_ready(self, client_timeout: float | None = None) -> bool:
        return self._call("is_server_ready", client_timeout=client_timeout)

    def is_model_ready(self, model_name: str, client_timeout: float | None = None) -> bool:
        return self._call("is_model_ready", model_name, client_timeout=client_timeout)

    def get_model_config(self, model_name: str, as_json: bool = True, client_timeout: float | None = None) -> dict:
        return {"config": self._call("get_model_config", model_name, client_timeout=client_timeout)}

    def get_model_metadata(self, model_name: str, as_json: bool = True, client_timeout: float | None = None) -> dict:
        return self._call("get_model_metadata", model_name, client_timeout=client_timeout)

    def get_model_repository_index(self, as_json: bool = True, client_timeout: float | None = None) -> dict:
        return {"models": self._call("get_model_repository_index", client_timeout=client_timeout)}

    def get_inference_statistics(self, model_name: str, as_json: bool = True,
                                 client_timeout: float | None = None) -> dict:
        return self._call("get_inference_statistics", model_name, client_timeout=client_timeout)

    def infer(self, model_name: str, inputs: list, *, parameters: dict | None = None,
              client_timeout: float | None = None, compression_algorithm: str | None = None) -> Any:
        return self._call("infer", model_name, inputs, parameters=parameters, client_timeout=client_timeout,
                          request_compression_algorithm=compression_algorithm)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):  # another thread's gevent client may not close from here
                client.close()
