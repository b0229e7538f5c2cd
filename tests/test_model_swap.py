"""A served model swapped under load (explicit model control): roll a version out, roll it back, with 8
callers running and none failing; model control kept to callers with the admin key; loopback by default."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from focoos.builder import RepositoryBuilder, roll_back, roll_out
from focoos.client import PermissionDenied, TritonInferModel
from focoos.client.control import ModelControl

from focoos.ports import RuntimeType

ADMIN_KEY = "test-admin-key"
CALLERS = 8
BUILD = {"runtime_type": RuntimeType.ONNX_CPU, "target": "embedded", "max_batch_size": 4,
         "preprocess_instances": 1, "postprocess_instances": 1}


@pytest.fixture(scope="module")
def server(serve_repository, small_detr):
    return serve_repository({"tiny": (small_detr, RuntimeType.ONNX_CPU)},
                            server={"model_control": "explicit", "admin_key": ADMIN_KEY})


@pytest.fixture(scope="module")
def other_weights(small_detr):
    """The same model with other weights: its answers tell which version served a call."""
    model = copy.deepcopy(small_detr)
    with torch.no_grad():
        for parameter in model.model.parameters():
            parameter.mul_(0.8)
    return model


def _signature(det) -> float:
    return round(max(d.conf for d in det.detections), 3)


class Callers:
    """CALLERS threads calling back to back; every answer's signature and every error, with its time."""

    def __init__(self, url: str, image: str) -> None:
        self.answers: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(url, image)) for _ in range(CALLERS)]

    def _run(self, url: str, image: str) -> None:
        with TritonInferModel(url, "tiny") as client:
            while not self._stop.is_set():
                try:
                    self.answers.append((time.monotonic(), _signature(client.infer(image, threshold=0.0))))
                except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
                    self.errors.append(repr(exc))

    def wait_for(self, signature: float, timeout_s: float = 60.0) -> float:
        """Seconds until every caller's answers carry `signature` (the last CALLERS answers all do)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            recent = [s for _, s in self.answers[-CALLERS:]]
            if len(recent) == CALLERS and set(recent) == {signature}:
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"answers never switched to {signature}: last {self.answers[-CALLERS:]}")

    def __enter__(self) -> Callers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_roll_out_and_back_under_load_fails_no_call(server, small_detr, other_weights, image_path, tmp_path):
    old = _signature(small_detr.infer(str(image_path), threshold=0.0))
    new = _signature(other_weights.infer(str(image_path), threshold=0.0))
    assert old != new
    root, url = server.repository, server.grpc_url
    with ModelControl(url, admin_key=ADMIN_KEY) as control, Callers(url, str(image_path)) as load:
        load.wait_for(old)
        served = roll_out(root, other_weights, control, name="tiny", **BUILD)
        assert served.versions == [1, 2]
        load.wait_for(new)
        assert control.ready_versions("tiny") == [2]
        served = roll_back(root, "tiny", control)
        assert served.versions == [1]
        load.wait_for(old)
        assert control.ready_versions("tiny") == [1]
        calls = len(load.answers)
    assert load.errors == [] and calls > 3 * CALLERS

    # The command does the same from a model folder; --keep 1: only the new version stays.
    other_weights.save(tmp_path / "new")
    command = [str(Path(sys.executable).parent / "focoos"), "swap", "--url", url, "--repository", str(root),
               "--name", "tiny", "--model", str(tmp_path / "new"), "--runtime", "onnx_cpu", "--target", "embedded",
               "--max-batch-size", "4", "--keep", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FOCOOS_ADMIN_KEY": ADMIN_KEY})
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"tiny: serving version 2 (kept [2]) on {url}" in done.stdout
    assert RepositoryBuilder(root).validate() == []
    with ModelControl(url, admin_key=ADMIN_KEY) as control, TritonInferModel(url, "tiny") as client:
        assert control.ready_versions("tiny") == [2]
        assert _signature(client.infer(str(image_path), threshold=0.0)) == new


def test_model_control_needs_the_admin_key(server, image_path):
    with ModelControl(server.grpc_url) as control:
        with pytest.raises(PermissionDenied, match="restricts this call"):
            control.load("tiny")
        with pytest.raises(PermissionDenied):
            control.index()
    with ModelControl(server.grpc_url, admin_key="wrong") as control, pytest.raises(PermissionDenied):
        control.unload("tiny")
    with TritonInferModel(server.grpc_url, "tiny") as client:  # inference is not restricted
        assert client.ready() and client.infer(str(image_path)) is not None


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_server_listens_on_loopback_only_by_default(server):
    assert server.host == "127.0.0.1"
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    for port in (server.grpc_port, server.http_port, server.metrics_port):
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
