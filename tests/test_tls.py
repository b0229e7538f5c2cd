"""TLS and mutual TLS between our clients and a real tritonserver, with certificates made in the test:
answers as over plaintext, each certificate problem a TLSError that says what was wrong, and no way
around TLS through the server's other ports."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from focoos.builder import ServerTLS, TritonServer
from focoos.builder.server import TLS_HTTP_HEADER
from focoos.client import AsyncTritonInferModel, PermissionDenied, ServerUnavailable, TLSError, TritonInferModel

from focoos.ports import RuntimeType
from tests.tls_certs import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


# The mutual-TLS server listens on every interface, so that another loopback address shows what it exposes
# beyond loopback; its certificate names localhost and 127.0.0.1 only.
OTHER_ADDRESS = "127.0.0.2"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def mtls_server(serve_repository, small_detr, pki):
    tls = ServerTLS(pki.server.cert, pki.server.key, client_ca=pki.ca)
    return serve_repository({"tiny": (small_detr, RuntimeType.ONNX_CPU)}, server={"tls": tls, "host": "0.0.0.0"})


@pytest.fixture(scope="module")
def plaintext_server(mtls_server):
    with TritonServer(mtls_server.repository) as server:
        yield server


def _url(server, host: str = "127.0.0.1") -> str:
    return f"{host}:{server.grpc_port}"


def _client(server, pki, host: str = "127.0.0.1", **files) -> TritonInferModel:
    fields = {"root_certificates": str(pki.ca), "certificate_chain": str(pki.client.cert),
              "private_key": str(pki.client.key), **files}
    return TritonInferModel(_url(server, host), "tiny", max_retries=0, inference_timeout_s=10,
                            **{k: v for k, v in fields.items() if v is not None})


def _same(served, local) -> None:
    assert len(served.detections) == len(local.detections) > 0
    for s, loc in zip(served.detections, local.detections, strict=True):
        assert s.cls_id == loc.cls_id and abs(s.conf - loc.conf) < 1e-3
        np.testing.assert_allclose(s.bbox, loc.bbox, atol=1)


def test_mutual_tls_sync_and_async_answer_as_local(mtls_server, pki, small_detr, image_path):
    local = small_detr.infer(str(image_path), threshold=0.0)
    with _client(mtls_server, pki) as client:
        _same(client.infer(str(image_path), threshold=0.0), local)

    async def call():
        async with AsyncTritonInferModel(_url(mtls_server), "tiny", root_certificates=str(pki.ca),
                                         certificate_chain=str(pki.client.cert),
                                         private_key=str(pki.client.key)) as client:
            return await client.infer(str(image_path), threshold=0.0)

    _same(asyncio.run(call()), local)


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (lambda pki: {"root_certificates": str(pki.other_ca)}, "server's certificate was refused"),  # untrusted
        (lambda pki: {"certificate_chain": None, "private_key": None}, "wants a client certificate"),  # none sent
    ],
    ids=["wrong-ca", "missing-client-cert"],
)
def test_handshake_failures_are_tls_errors_and_the_server_stays_up(mtls_server, pki, image_path, files, says):
    with _client(mtls_server, pki, **files(pki)) as client, pytest.raises(TLSError, match=says):
        client.infer(str(image_path))
    with _client(mtls_server, pki) as client:
        assert client.infer(str(image_path), threshold=0.0).detections


def test_plaintext_client_of_a_tls_server_is_told_to_use_tls(mtls_server, image_path):
    with TritonInferModel(_url(mtls_server), "tiny", max_retries=0) as client, \
            pytest.raises(ServerUnavailable, match="if the server uses TLS"):
        client.infer(str(image_path))


def test_tls_client_of_a_plaintext_server_is_told_it_does_not_speak_tls(plaintext_server, pki, image_path):
    with _client(plaintext_server, pki) as client, pytest.raises(TLSError, match="does not speak TLS"):
        client.infer(str(image_path))


def test_a_host_the_certificate_does_not_name_is_a_tls_error(mtls_server, pki, image_path):
    with _client(mtls_server, pki, host=OTHER_ADDRESS) as client, \
            pytest.raises(TLSError, match="does not name the host"):
        client.infer(str(image_path))


def _http(url: str, method: str = "GET", body: bytes | None = None) -> int:
    try:
        with _NO_PROXY.open(urllib.request.Request(url, data=body, method=method), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_plain_http_cannot_get_around_mutual_tls(mtls_server, image_path):
    """Triton's HTTP has no TLS: it answers only health probes, on loopback; metrics stay on loopback too."""
    for port in (mtls_server.http_port, mtls_server.metrics_port):  # nothing beyond loopback
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((OTHER_ADDRESS, port), timeout=5).close()
    socket.create_connection((OTHER_ADDRESS, mtls_server.grpc_port), timeout=5).close()  # gRPC is served there
    assert mtls_server.ready() and mtls_server.http_url.startswith("http://127.0.0.1:")
    base = f"{mtls_server.http_url}/v2/models/tiny"
    assert _http(f"{base}/infer", "POST", b'{"inputs": []}') == _http(base) == _http(f"{base}/config") == 403
    with TritonInferModel(mtls_server.http_url, "tiny") as client, \
            pytest.raises(PermissionDenied, match=TLS_HTTP_HEADER):
        client.infer(str(image_path))


def test_certificate_problems_are_caught_before_connecting(pki, tmp_path):
    url = "127.0.0.1:1"  # nothing listens there: each error below is raised before any connection
    with pytest.raises(TLSError, match=r"client certificate .*expired on"):
        TritonInferModel(url, "tiny", root_certificates=str(pki.ca), certificate_chain=str(pki.expired_client.cert),
                         private_key=str(pki.expired_client.key))
    with pytest.raises(TLSError, match="does not match certificate"):
        TritonInferModel(url, "tiny", certificate_chain=str(pki.client.cert), private_key=str(pki.server.key))
    with pytest.raises(TLSError, match="cannot be read"):
        TritonInferModel(url, "tiny", root_certificates=str(tmp_path / "missing.crt"))
    with pytest.raises(TLSError, match="needs its private key"):
        TritonInferModel(url, "tiny", certificate_chain=str(pki.client.cert))
    with pytest.raises(TLSError, match=r"server certificate .*expired on"):
        TritonServer(tmp_path, tls=ServerTLS(pki.expired_server.cert, pki.expired_server.key))


def test_a_server_with_an_expired_certificate_is_refused(tmp_path, pki, small_detr, image_path):
    """Our launcher refuses an expired certificate; a server started without that check is refused by the client."""
    from focoos.builder import RepositoryBuilder

    RepositoryBuilder(tmp_path).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="tiny", target="embedded",
                                    max_batch_size=1, preprocess_instances=1, postprocess_instances=1)
    flags = ["--grpc-use-ssl=true", f"--grpc-server-cert={pki.expired_server.cert}",
             f"--grpc-server-key={pki.expired_server.key}"]
    with TritonServer(tmp_path, extra_args=flags) as server, \
            TritonInferModel(server.grpc_url, "tiny", root_certificates=str(pki.ca), max_retries=0) as client, \
            pytest.raises(TLSError, match="certificate has expired"):
        client.infer(str(image_path))
