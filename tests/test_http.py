"""Triton's HTTP/REST endpoint for callers without our gRPC client: the README's curl command and
TritonInferModel over http://, both answering as the gRPC client does, against a real tritonserver
serving the bundled detector (real weights, so the detections are real digits)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from focoos.client import (
    AsyncTritonInferModel,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    TLSError,
    TritonClientError,
    TritonInferModel,
)

from focoos import ModelManager, RuntimeType
from focoos.processing.transport import BOXES, CLASSES, NUM_DETECTIONS, SCORES
from tests.parity import assert_same_detections

NAME = "fai-detr-n-digits"  # the README command's default model name
README = Path(__file__).resolve().parents[1] / "README.md"
THRESHOLD = 0.5  # the README command's threshold


@pytest.fixture(scope="module")
def server(serve_repository):
    return serve_repository({NAME: (ModelManager.get(NAME, device="cpu"), RuntimeType.ONNX_CPU)})


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    from focoos.data.digits import load_mnist_digits, make_canvas, split_by_class

    digits, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    image, _ = make_canvas(np.random.default_rng(7), digits, labels, val_pool, 256, num_digits=(3, 3),
                           scale=(1.5, 3.0))
    return image


@pytest.fixture(scope="module")
def image_file(canvas, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("curl") / "image.jpg"  # the README command's default image name
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def over_grpc(server, image_file):
    with TritonInferModel(server.grpc_url, NAME) as client:
        return client.infer(str(image_file), threshold=THRESHOLD)


def readme_curl_command() -> str:
    """The bash block of the README's plain-HTTP section, as a user copies it."""
    section = README.read_text().split("### Plain HTTP", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S)[1]


def test_readme_curl_command_gets_the_grpc_clients_detections(server, image_file, over_grpc):
    if shutil.which("curl") is None:
        pytest.skip("the curl binary is not installed: the README's command cannot run")
    env = {**os.environ, "SERVER": f"127.0.0.1:{server.http_port}"}  # MODEL and IMAGE: the README's defaults
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", readme_curl_command()], cwd=image_file.parent,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in json.loads(done.stdout)["outputs"]}
    count = int(outputs[NUM_DETECTIONS][0, 0])
    expected = over_grpc.detections
    assert count == len(expected) >= 2
    for i, det in enumerate(expected):
        assert outputs[CLASSES][0, i] == det.cls_id and abs(outputs[SCORES][0, i] - det.conf) < 1e-3
        np.testing.assert_allclose(outputs[BOXES][0, i], det.bbox, atol=1)


def test_http_transport_answers_as_grpc(server, image_file, canvas, over_grpc):
    with TritonInferModel(server.http_url, NAME) as client:
        assert client.classes == [str(i) for i in range(10)] and client.task == "detection"
        assert client.live() and client.ready() and NAME in client.list_models()
        assert client.metadata()["name"] == NAME and client.statistics()["model_stats"]
        assert_same_detections(client.infer(str(image_file), threshold=THRESHOLD), over_grpc)
        batch = client.infer([image_file.read_bytes(), canvas], threshold=THRESHOLD, annotate=True)
    with TritonInferModel(server.grpc_url, NAME) as grpc:
        expected = grpc.infer([image_file.read_bytes(), canvas], threshold=THRESHOLD)
    for got, want in zip(batch, expected, strict=True):
        assert_same_detections(got, want)
        assert got.image is not None


def test_http_client_serves_several_threads(server, image_file, over_grpc):
    with TritonInferModel(server.http_url, NAME) as client, ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: client.infer(str(image_file), threshold=THRESHOLD), range(6)))
    for result in results:
        assert_same_detections(result, over_grpc)


def test_http_failures_are_the_typed_errors_of_grpc(server, image_file):
    with TritonInferModel(server.http_url, "no-such-model") as client, pytest.raises(ModelNotFound):
        client.infer(str(image_file))
    with TritonInferModel(server.http_url, NAME) as client:
        with pytest.raises(InvalidInput, match="cannot decode"):
            client.infer(b"not an image")
        with pytest.raises(DeadlineExceeded):
            client.infer(str(image_file), timeout_s=1e-4)
        assert client.infer(str(image_file), threshold=THRESHOLD).detections  # the client recovers
    with TritonInferModel("http://127.0.0.1:1", NAME, inference_timeout_s=5) as client, \
            pytest.raises(ServerUnavailable, match="Connection refused"):
        client.infer(str(image_file))


def test_http_urls_refuse_what_they_cannot_do(pki_ca):
    with pytest.raises(TLSError, match="plain URL"):
        TritonInferModel("http://127.0.0.1:1", NAME, root_certificates=str(pki_ca))
    with pytest.raises(TritonClientError, match="speaks gRPC"):
        AsyncTritonInferModel("http://127.0.0.1:1", NAME)


@pytest.fixture()
def pki_ca(tmp_path) -> Path:
    from tests.tls_certs import make_pki

    return make_pki(tmp_path).ca


@pytest.fixture()
def tls_proxy(server, tmp_path):
    """A TLS-terminating proxy in front of Triton's HTTP port, as an ingress would be: (https URL, pki)."""
    from tests.tls_certs import make_pki

    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", server.http_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    proxy = loop.run_until_complete(asyncio.start_server(relay, "127.0.0.1", 0, ssl=context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{proxy.sockets[0].getsockname()[1]}", pki
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    proxy.close()
    loop.close()


def test_https_through_a_tls_proxy(tls_proxy, image_file, over_grpc):
    url, pki = tls_proxy
    with TritonInferModel(url, NAME, root_certificates=str(pki.ca)) as client:
        assert_same_detections(client.infer(str(image_file), threshold=THRESHOLD), over_grpc)
    with TritonInferModel(url, NAME, root_certificates=str(pki.other_ca)) as client, \
            pytest.raises(TLSError, match="certificate was refused"):
        client.infer(str(image_file))


def test_focoos_predict_over_http(server, image_file, over_grpc, tmp_path, capsys):
    from focoos.cli import main

    code = main(["predict", "--url", server.http_url, "--model", NAME, "--image", str(image_file),
                 "--output-dir", str(tmp_path), "--no-save", "--no-save-masks"])
    assert code == 0
    saved = json.loads(next(tmp_path.rglob("*_detections.json")).read_text())
    assert [d["label"] for d in saved["detections"]] == [d.label for d in over_grpc.detections]
