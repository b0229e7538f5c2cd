"""Overload: the ensemble admits a bounded number of requests; the rest are refused with ServerBusy before
the server reads their input, nothing is lost, and slots come back. Timings live in benchmarks/overload.py."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from focoos.builder import RepositoryBuilder
from focoos.builder.configs import default_max_in_flight, read_config
from focoos.client import AsyncTritonInferModel, DeadlineExceeded, InvalidInput, ServerBusy, TritonInferModel

from focoos import ModelManager
from focoos.ports import RuntimeType
from focoos.processing.transport import IMAGE, IMAGE_SHAPE, PARAM_MAX_IN_FLIGHT

MAX_IN_FLIGHT = 2
MAX_LEASE_S = 60.0  # far above what the leases of these tests come to (four service times, at least 1 s)
BURST = 24


@pytest.fixture(scope="module")
def server(serve_repository):
    model = ModelManager.get("fai-detr-n-digits", device="cpu")
    return serve_repository({"tiny": (model, RuntimeType.ONNX_CPU)}, max_batch_size=1,
                            build={"max_in_flight": MAX_IN_FLIGHT, "admission_max_lease_s": MAX_LEASE_S})


def test_the_gate_is_in_the_first_and_the_last_step(server):
    for step in ("tiny_preprocess", "tiny_postprocess"):
        assert read_config(server.repository / step).parameters[PARAM_MAX_IN_FLIGHT].string_value == "2"
    assert RepositoryBuilder(server.repository).validate() == []
    assert default_max_in_flight(max_batch_size=8, network_instances=1, python_instances=4) == 20


def test_more_calls_than_slots_one_after_another_all_succeed(server, image_path):
    """Every finished request gives its slot back."""
    with TritonInferModel(server.grpc_url, "tiny") as client:
        for _ in range(3 * MAX_IN_FLIGHT):
            client.infer(image_path.read_bytes())


def test_a_burst_gets_answers_or_server_busy_and_nothing_is_lost(server, image_path):
    payload = image_path.read_bytes()

    async def burst() -> list[object]:
        async with AsyncTritonInferModel(server.grpc_url, "tiny", max_retries=0) as client:
            return await asyncio.gather(*(client.infer(payload) for _ in range(BURST)), return_exceptions=True)

    outcomes = asyncio.run(burst())
    busy = [o for o in outcomes if isinstance(o, ServerBusy)]
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(busy) + len(answered) == BURST, [o for o in outcomes if isinstance(o, Exception)]
    assert answered and busy  # at most MAX_IN_FLIGHT at once: a burst of 24 cannot all be admitted
    assert "server busy" in str(busy[0]) and busy[0].status == "StatusCode.UNAVAILABLE"
    with TritonInferModel(server.grpc_url, "tiny") as client:  # the slots came back
        for _ in range(MAX_IN_FLIGHT + 1):
            client.infer(payload)


def _until_admitted(client: TritonInferModel, payload: bytes, since: float) -> type[Exception] | None:
    """Call until the gate admits the call (its outcome: None for an answer, else the error's class); fails
    if that takes the longest lease, which a dead request's slot is never held past."""
    while True:
        try:
            client.infer(payload)
            return None
        except ServerBusy:
            assert time.monotonic() - since < MAX_LEASE_S, "slots of dead requests held to the longest lease"
            time.sleep(0.2)
        except InvalidInput:
            return InvalidInput


def test_a_full_gate_refuses_before_reading_the_input_and_dead_requests_give_their_slots_back(server):
    """Direct calls to the first step take slots that no postprocess step gives back: with every slot
    taken, bytes that are no image get ServerBusy, not InvalidInput (the input was never read); once the
    slots' lease is over the same call gets InvalidInput."""
    garbage = b"certainly not an image" * 4
    taken = time.monotonic()
    with grpcclient.InferenceServerClient(server.grpc_url) as raw:
        for _ in range(MAX_IN_FLIGHT):
            pixels = grpcclient.InferInput(IMAGE, [1, 48], "UINT8")
            pixels.set_data_from_numpy(np.full((1, 48), 128, np.uint8))
            shape = grpcclient.InferInput(IMAGE_SHAPE, [1, 3], "INT32")
            shape.set_data_from_numpy(np.array([[4, 4, 3]], np.int32))
            raw.infer("tiny_preprocess", [pixels, shape])
    with TritonInferModel(server.grpc_url, "tiny", max_retries=0) as client:
        with pytest.raises(ServerBusy):
            client.infer(garbage)
        with TritonInferModel(server.http_url, "tiny") as over_http, pytest.raises(ServerBusy) as refused:
            over_http.infer(garbage)
        assert refused.value.status == "503"  # HTTP callers get Service Unavailable
        assert _until_admitted(client, garbage, taken) is InvalidInput


def test_calls_whose_deadline_passes_give_their_slots_back(server, image_path):
    """Triton cancels the rest of the ensemble for a caller whose deadline passed, so the postprocess step
    never frees its slot: the lease does, within a few service times."""
    payload = image_path.read_bytes()

    async def impatient() -> list[object]:
        async with AsyncTritonInferModel(server.grpc_url, "tiny", max_retries=0, inference_timeout_s=0.01) as client:
            return await asyncio.gather(*(client.infer(payload) for _ in range(BURST)), return_exceptions=True)

    cancelled = time.monotonic()
    outcomes = asyncio.run(impatient())
    assert any(isinstance(o, DeadlineExceeded) for o in outcomes)  # admitted calls whose caller left
    with TritonInferModel(server.grpc_url, "tiny", max_retries=0) as client:
        assert _until_admitted(client, payload, cancelled) is None
