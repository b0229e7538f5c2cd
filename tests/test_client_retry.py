"""Both clients against a real tritonserver: gRPC's retry policy, served defaults, strict options."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from focoos.builder.repository import RepositoryBuilder
from focoos.builder.server import TritonServer, free_port
from focoos.client import (
    AsyncTritonInferModel,
    ClientOptions,
    DeadlineExceeded,
    InvalidInput,
    ServedModelInfo,
    ServerUnavailable,
    TritonInferModel,
)
from pydantic import ValidationError

from focoos import RuntimeType
from tests.conftest import make_scene
from tests.parity import assert_same_detections

pytestmark = pytest.mark.slow
IMAGE = make_scene(240, 320, seed=1)
THRESHOLD = 0.0105  # the tiny untrained model scores around 0.01: a few dozen detections over it
TOP_K = 7
JITTER = 0.8  # gRPC's C core waits each backoff within ±20%


@pytest.fixture(scope="module")
def repository(small_detr, tmp_path_factory):
    """Served defaults that differ from the local ones, so a client that ignored them would show."""
    root = tmp_path_factory.mktemp("repository")
    RepositoryBuilder(root).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="det", target="embedded",
                                max_batch_size=4, top_k=TOP_K, threshold=THRESHOLD, preprocess_instances=1,
                                postprocess_instances=1)
    return root


@pytest.fixture(scope="module")
def server(repository):
    with TritonServer(repository) as running:
        yield running


def _async_infer(url: str, image, **options) -> object:
    async def run():
        async with AsyncTritonInferModel(url, "det", **options) as client:
            return await client.infer(image)

    return asyncio.run(run())


def _failures(client: TritonInferModel) -> int:
    """The ensemble's failure count once it has settled (the server may record a failure after answering)."""
    def read() -> int:
        stats = client.statistics()["model_stats"][0]["inference_stats"]
        return int(stats.get("fail", {}).get("count", 0))

    counts = [read()]
    while len(counts) < 2 or counts[-1] != counts[-2]:
        time.sleep(0.3)
        counts.append(read())
    return counts[-1]


def test_the_retry_policy_is_in_the_channel_args():
    args = dict(ClientOptions(max_retries=2, backoff_s=0.5).channel_args())
    (method,) = json.loads(args["grpc.service_config"])["methodConfig"]
    assert method["retryPolicy"] == {"maxAttempts": 3, "initialBackoff": "0.500000000s", "maxBackoff": "1.000000000s",
                                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    assert {"method": "ModelInfer", "service": "inference.GRPCInferenceService"} in method["name"]
    assert not any(n["method"].startswith(("Server", "ModelReady")) for n in method["name"])  # probes answer now
    (method,) = json.loads(dict(ClientOptions(max_retries=0).channel_args())["grpc.service_config"])["methodConfig"]
    assert "retryPolicy" not in method
    with pytest.raises(ValidationError):
        ClientOptions(max_retries=5)  # gRPC clamps attempts to 5


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_unavailable_is_retried_with_backoff(flavour):
    """Two retries wait out both backoffs (a lower bound: a slow machine only adds to it)."""
    url = f"127.0.0.1:{free_port()}"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(ServerUnavailable):
        if flavour == "sync":
            with TritonInferModel(url, "det", max_retries=2, backoff_s=0.5) as client:
                client.infer(IMAGE)
        else:
            _async_infer(url, IMAGE, max_retries=2, backoff_s=0.5)
    assert time.perf_counter() - start >= JITTER * (0.5 + 1.0)


def test_the_deadline_bounds_every_attempt_together():
    """A hand-written loop gave each attempt its own deadline: 4 retries at 1 s backoff took 15 s. The
    bound below is half of the backoffs alone, so it tells the two apart on any machine."""
    url = f"127.0.0.1:{free_port()}"
    with TritonInferModel(url, "det", max_retries=4, backoff_s=1.0, inference_timeout_s=2.0) as client:
        start = time.perf_counter()
        with pytest.raises((DeadlineExceeded, ServerUnavailable)):
            client.infer(IMAGE)
        assert time.perf_counter() - start < JITTER * (1.0 + 2.0 + 4.0 + 8.0) / 2


def test_calls_made_while_the_server_starts_or_restarts_succeed(repository, small_detr):
    """Both clients call before the server listens (first start, then a restart on the same ports);
    gRPC's retry policy carries the calls over; without retries the same call fails at once."""
    ports = {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    expected = small_detr.infer(IMAGE, threshold=THRESHOLD, top_k=TOP_K)
    server = TritonServer(repository, **ports)
    url = server.grpc_url
    patient = {"max_retries": 4, "backoff_s": 1.0, "inference_timeout_s": 60}  # waits about 1+2+4+8 s

    def during_start(sync_client: TritonInferModel) -> dict:
        outcomes: dict = {}

        def sync_call() -> None:
            outcomes["sync"] = sync_client.infer(IMAGE)

        def async_call() -> None:
            outcomes["async"] = _async_infer(url, IMAGE, **patient)

        callers = [threading.Thread(target=sync_call), threading.Thread(target=async_call)]
        for caller in callers:
            caller.start()
        with TritonInferModel(url, "det", max_retries=0) as impatient, pytest.raises(ServerUnavailable):
            impatient.infer(IMAGE)
        server.start()  # blocks until ready; the callers are retrying meanwhile
        for caller in callers:
            caller.join(timeout=60)
        return outcomes

    try:
        with TritonInferModel(url, "det", **patient) as client:
            first = during_start(client)  # the sync client reads the config first: retried the same way
            server.stop()
            again = during_start(client)  # the same channel reconnects after the server went away
    finally:
        server.stop()
    for outcomes in (first, again):
        assert set(outcomes) == {"sync", "async"}
        for det in outcomes.values():
            assert_same_detections(det, expected)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_bad_input_is_not_retried(server, flavour):
    """With 4 retries allowed, the server records as many failures as for a call without retries."""
    def failures_of(bad_call) -> int:
        before = _failures(observer)
        with pytest.raises(InvalidInput, match="cannot decode"):
            bad_call()
        return _failures(observer) - before

    def call(retries: int) -> None:
        if flavour == "async":
            _async_infer(server.grpc_url, b"not an image at all", max_retries=retries, backoff_s=2.0)
            return
        with TritonInferModel(server.grpc_url, "det", max_retries=retries, backoff_s=2.0) as client:
            client.infer(b"not an image at all")

    with TritonInferModel(server.grpc_url, "det", max_retries=0) as observer:
        once = failures_of(lambda: call(0))
        assert once > 0 and failures_of(lambda: call(4)) == once


def test_defaults_are_the_served_models(server, small_detr):
    """threshold and top_k left out: the ensemble's config decides, in both clients."""
    expected = small_detr.infer(IMAGE, threshold=THRESHOLD, top_k=TOP_K)
    assert len(expected.detections) == TOP_K
    with TritonInferModel(server.grpc_url, "det") as client:
        assert (client.info.top_k, client.info.threshold) == (TOP_K, THRESHOLD)
        assert_same_detections(client.infer(IMAGE), expected)
        with pytest.raises(InvalidInput, match=f"top_k must be in \\[1, {TOP_K}\\]"):
            client.infer(IMAGE, top_k=TOP_K + 1)
        config = client._call(client._config_rpc())["config"]
    assert_same_detections(_async_infer(server.grpc_url, IMAGE), expected)
    for fact in ("top_k", "threshold"):
        stripped = {**config, "parameters": {k: v for k, v in config["parameters"].items() if k != fact}}
        with pytest.raises(InvalidInput, match=f"lacks {fact}"):
            ServedModelInfo.from_config(stripped)


def test_unknown_options_are_type_errors():
    url = f"127.0.0.1:{free_port()}"  # refused before anything is sent
    valid = "valid: threshold, annotate, top_k, timeout_s"
    message = f"infer\\(\\) got unknown option\\(s\\) treshold; {valid}"
    with TritonInferModel(url, "det") as client, pytest.raises(TypeError, match=message):
        client.infer(IMAGE, treshold=0.3)
    with pytest.raises(TypeError, match=f"infer\\(\\) got unknown option\\(s\\) size, topk; {valid}"):
        asyncio.run(_misspelt_async(url))
    for client_type in (TritonInferModel, AsyncTritonInferModel):
        name = client_type.__name__
        with pytest.raises(TypeError, match=f"{name}\\(\\) got unknown option\\(s\\) max_retry; valid: options, "):
            client_type(url, "det", max_retry=1)
        with pytest.raises(TypeError, match="not both"):
            client_type(url, "det", options=ClientOptions(), max_retries=1)


async def _misspelt_async(url: str) -> None:
    async with AsyncTritonInferModel(url, "det") as client:
        await client.infer(IMAGE, topk=3, size=10)
