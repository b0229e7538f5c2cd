"""A served model swapped under load (explicit model control), all or nothing: the careless swap picks what is served,
a version this server cannot load or of another task is refused (the old one keeps answering), a version that fails
after loading is undone, readiness holds, concurrent swaps are serialized; model control needs the admin key;
loopback by default; the accuracy gate runs before a roll-out. Bundled models with their trained weights: the digits
detector and segmenter."""

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
from focoos.builder import RepositoryBuilder, SwapError, SwapLocked, roll_back, roll_out
from focoos.builder.accuracy import AccuracyGateError
from focoos.builder.configs import StepNames, model_versions
from focoos.builder.rollout import LOCK_FILE, swap_lock
from focoos.client import PermissionDenied, TritonInferModel
from focoos.client.control import ModelControl

from focoos import ModelManager
from focoos.ports import RuntimeType

ADMIN_KEY = "test-admin-key"
NAME = "digits"
CALLERS = 2
# Triton's strict readiness is false while any model version loads or unloads (server.cc, IsReady), so a server
# that takes swaps answers readiness for itself; its models' states are what the swap verifies.
SERVER = {"model_control": "explicit", "admin_key": ADMIN_KEY}


@pytest.fixture(scope="module")
def detector():
    return ModelManager.get("fai-detr-n-digits", device="cpu")


@pytest.fixture(scope="module")
def server(serve_repository, detector):
    return serve_repository({NAME: (detector, RuntimeType.ONNX_CPU)}, server=SERVER)


@pytest.fixture(scope="module")
def other_weights(detector):
    """The same model with other weights: its answers tell which version served a call."""
    model = copy.deepcopy(detector)
    with torch.no_grad():
        for parameter in model.model.parameters():
            parameter.mul_(0.8)
    return model


@pytest.fixture()
def control(server):
    with ModelControl(server.grpc_url, admin_key=ADMIN_KEY) as control:
        yield control


def _signature(det) -> float:
    return round(max(d.conf for d in det.detections), 3)


def _answer(server, image_path) -> float:
    with TritonInferModel(server.grpc_url, NAME) as client:
        return _signature(client.infer(str(image_path), threshold=0.0))


def _state(server, control) -> dict:
    """Versions on disk and READY on the server, per step; the repository's problems."""
    root = Path(server.repository)
    steps = StepNames(NAME).all
    return {"disk": {s: model_versions(root / s) for s in steps},
            "ready": {s: control.ready_versions(s) for s in steps}, "problems": RepositoryBuilder(root).validate()}


def _swap_command(server, model_dir: Path, *extra: str) -> list[str]:
    return [str(Path(sys.executable).parent / "focoos"), "swap", "--url", server.grpc_url, "--repository",
            str(server.repository), "--name", NAME, "--model", str(model_dir), *extra]


def _env() -> dict:
    return {**os.environ, "FOCOOS_ADMIN_KEY": ADMIN_KEY}


class Load:
    """CALLERS threads calling back to back and one probing readiness: answers, errors and failed probes."""

    def __init__(self, server, image: str) -> None:
        self.answers: list[float] = []
        self.errors: list[str] = []
        self.probes = self.not_ready = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._call, args=(server.grpc_url, image)) for _ in range(CALLERS)]
        self._threads.append(threading.Thread(target=self._probe, args=(server,)))

    def _call(self, url: str, image: str) -> None:
        with TritonInferModel(url, NAME) as client:
            while not self._stop.is_set():
                try:
                    self.answers.append(_signature(client.infer(image, threshold=0.0)))
                except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
                    self.errors.append(repr(exc))

    def _probe(self, server) -> None:
        while not self._stop.wait(0.02):
            self.probes += 1
            self.not_ready += not server.ready()

    def wait_for(self, signature: float, timeout_s: float = 60.0) -> None:
        """Until every caller's answers carry `signature` (the last CALLERS answers all do)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.answers[-CALLERS:] == [signature] * CALLERS:
                return
            time.sleep(0.1)
        raise AssertionError(f"answers never switched to {signature}: last {self.answers[-CALLERS:]}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_careless_swap_serves_what_is_served_and_readiness_holds(server, control, other_weights, image_path,
                                                                 tmp_path):
    """No --runtime/--target/--max-batch-size: the new version is built as the served one (embedded, onnx_cpu)."""
    old, new = _answer(server, image_path), _signature(other_weights.infer(str(image_path), threshold=0.0))
    assert old != new
    served = RepositoryBuilder(server.repository).get(NAME)
    other_weights.save(tmp_path / "new")
    with Load(server, str(image_path)) as load:
        load.wait_for(old)
        done = subprocess.run(_swap_command(server, tmp_path / "new"), capture_output=True, text=True, timeout=300,
                              env=_env())
        assert done.returncode == 0, done.stderr[-2000:]
        version = served.versions[-1] + 1
        assert f"{NAME}: serving version {version} (kept {[served.versions[-1], version]})" in done.stdout
        load.wait_for(new)
        rolled_back = roll_back(server.repository, NAME, control)
        load.wait_for(old)
    assert load.errors == [] and len(load.answers) > 3 * CALLERS
    assert load.probes > 10 and load.not_ready == 0
    assert rolled_back.versions == [served.versions[-1]]
    config = control.config(NAME)
    params = {k: v["string_value"] for k, v in config["parameters"].items()}
    assert (params["target"], params["runtime_type"], config["max_batch_size"]) == ("embedded", "onnx_cpu", 4)
    assert _state(server, control)["ready"][NAME] == rolled_back.versions


def test_version_this_server_cannot_load_is_refused(server, control, other_weights, image_path):
    before, old = _state(server, control), _answer(server, image_path)
    with pytest.raises(SwapError, match=r"cannot load on .*nothing was changed.*onnxruntime"):
        roll_out(server.repository, other_weights, control, name=NAME, target="gpu", keep=1)
    assert server.ready() and _state(server, control) == before and _answer(server, image_path) == old


def test_version_failing_after_load_is_undone(server, control, other_weights, image_path, monkeypatch):
    """The warm-up call fails once: the new version is moved out and the old one loaded again."""
    before, old = _state(server, control), _answer(server, image_path)
    warm_up = control.warm_up
    calls = []

    def fail_once(name: str):
        calls.append(name)
        if len(calls) == 1:
            raise SwapError("the warm-up call failed")
        return warm_up(name)

    monkeypatch.setattr(control, "warm_up", fail_once)
    with pytest.raises(SwapError, match=r"version \d+ failed and was moved out, the server answers with version"):
        roll_out(server.repository, other_weights, control, name=NAME, keep=1)
    assert len(calls) == 2
    assert server.ready() and _state(server, control) == before and _answer(server, image_path) == old


def test_accuracy_gate_refuses_a_version_that_answers_worse(server, control, detector, digits_val, image_path):
    """The swap runs the build's accuracy gate before anything reaches the server: an answer cap too small for
    the scenes loses AP, so the version is never rolled out."""
    before, old = _state(server, control), _answer(server, image_path)
    with pytest.raises(AccuracyGateError, match="not published: accuracy check failed: bbox/AP"):
        roll_out(server.repository, detector, control, name=NAME, top_k=1, check_accuracy=digits_val, keep=1)
    assert server.ready() and _state(server, control) == before and _answer(server, image_path) == old


def test_task_change_is_refused_unless_forced(server, control, image_path):
    segmenter = ModelManager.get("fai-mf-n-digits-ins", device="cpu")
    before = _state(server, control)
    with pytest.raises(SwapError, match="serves detection and the new version is instseg.*--force"):
        roll_out(server.repository, segmenter, control, name=NAME)
    assert _state(server, control) == before
    served = roll_out(server.repository, segmenter, control, name=NAME, force=True)
    with TritonInferModel(server.grpc_url, NAME) as client:
        assert client.info.task == "instseg" and client.infer(str(image_path)) is not None
    roll_back(server.repository, NAME, control)
    assert _state(server, control)["ready"][NAME] == served.versions[:-1]
    with TritonInferModel(server.grpc_url, NAME) as client:
        assert client.info.task == "detection"


def test_concurrent_swaps_are_serialized(server, control, other_weights, tmp_path):
    """While one swap holds the repository's lock, another is refused at once with who holds it, or waits for it."""
    other_weights.save(tmp_path / "new")
    lock = Path(server.repository) / LOCK_FILE
    first = subprocess.Popen(_swap_command(server, tmp_path / "new"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and f"pid {first.pid} " in lock.read_text()) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        with pytest.raises(SwapLocked, match=f"another swap of .* is running \\(pid {first.pid} since"):
            roll_out(server.repository, other_weights, control, name=NAME)
        with swap_lock(Path(server.repository), timeout_s=300):  # waits for the first swap to end
            state = _state(server, control)
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    served = RepositoryBuilder(server.repository).get(NAME)
    assert f"serving version {served.versions[-1]}" in out
    assert state["problems"] == [] and state["ready"][NAME] == [served.versions[-1]]
    assert all(versions == served.versions for versions in state["disk"].values())


def test_model_control_needs_the_admin_key(server, image_path):
    with ModelControl(server.grpc_url) as control:
        with pytest.raises(PermissionDenied, match="restricts this call"):
            control.load(NAME)
        with pytest.raises(PermissionDenied):
            control.index()
    with ModelControl(server.grpc_url, admin_key="wrong") as control, pytest.raises(PermissionDenied):
        control.unload(NAME)
    with TritonInferModel(server.grpc_url, NAME) as client:  # inference is not restricted
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
