"""TritonServer against the real tritonserver bundled in nvidia-pytriton: no mocks, every server stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

grpcclient = pytest.importorskip("tritonclient.grpc")

from focoos.builder.server import TritonServer, TritonServerError, find_tritonserver, free_port  # noqa: E402
from focoos.builder.watchdog import group_members, group_shm_regions  # noqa: E402

try:
    BINARY = find_tritonserver()
except TritonServerError as exc:  # pragma: no cover - only without nvidia-pytriton / tritonserver
    pytest.skip(f"no tritonserver: {exc}", allow_module_level=True)

DOUBLE_CONFIG = """
name: "double"
backend: "{backend}"
max_batch_size: 0
input [ {{ name: "INPUT" data_type: TYPE_INT32 dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT" data_type: TYPE_INT32 dims: [ -1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
"""

DOUBLE_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", (x * 2).astype(np.int32))]))
        return responses
"""

SLOW_MODEL = """
import time


class TritonPythonModel:
    def initialize(self, args):
        time.sleep(20)
"""

BROKEN_MODEL = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("deliberately broken model for the focoos test")
"""


def write_model(
    repo: Path, backend: str = "python", model_py: str | None = DOUBLE_MODEL, instances: int = 1
) -> Path:
    model_dir = repo / "double"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(DOUBLE_CONFIG.format(backend=backend, instances=instances))
    if model_py is not None:
        (model_dir / "1" / "model.py").write_text(textwrap.dedent(model_py))
    return repo


def assert_gone(pid: int | None) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert group_members(pid) == []


def _mapped(path: Path) -> bool:
    """Whether a live process maps the file (read from Linux /proc/*/maps)."""
    for maps in Path("/proc").glob("[0-9]*/maps"):
        with contextlib.suppress(OSError):
            if str(path) in maps.read_text():
                return True
    return False


def double(server: TritonServer, values: list[int]) -> np.ndarray:
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        data = np.array(values, dtype=np.int32)
        tensor = grpcclient.InferInput("INPUT", list(data.shape), "INT32")
        tensor.set_data_from_numpy(data)
        return client.infer("double", [tensor]).as_numpy("OUTPUT")


@pytest.fixture(scope="module")
def ports() -> tuple[int, int, int]:
    picked: list[int] = []
    while len(picked) < 3:
        port = free_port()
        if port not in picked:
            picked.append(port)
    return tuple(picked)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, ports: tuple[int, int, int]) -> Iterator[TritonServer]:
    """One shared server with explicit ports; the with-block stops it even when a test fails."""
    repo = write_model(tmp_path_factory.mktemp("repo"))
    grpc_port, http_port, metrics_port = ports
    with TritonServer(repo, grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port) as server:
        yield server
    assert_gone(server.pid)


@pytest.mark.slow
def test_serves_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with TritonServer(write_model(tmp_path / "repo"), startup_timeout_s=60) as server:
        assert server.ready() and server.live()
        assert server.available_backends >= {"python", "ensemble"}
        assert server.pid is not None and os.getpgid(server.pid) == server.pid
        np.testing.assert_array_equal(double(server, [1, -2, 3]), [2, -4, 6])
    assert_gone(server.pid)
    assert not server.ready()
    server.stop()  # idempotent


def test_missing_backend_fails_before_launch(tmp_path: Path) -> None:
    server = TritonServer(write_model(tmp_path / "repo", backend="onnxruntime", model_py=None))
    with pytest.raises(TritonServerError, match="onnxruntime") as info:
        server.start()
    assert "double" in str(info.value)
    assert server.pid is None


def test_platform_maps_to_backend(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "detr" / "1").mkdir(parents=True)
    (repo / "detr" / "config.pbtxt").write_text('name: "detr"\nplatform: "tensorrt_plan"\n')
    with pytest.raises(TritonServerError, match="tensorrt"):
        TritonServer(repo).start()


def test_bad_config_and_empty_repository(tmp_path: Path) -> None:
    repo = write_model(tmp_path / "repo")
    (repo / "double" / "config.pbtxt").write_text("name: 'double'\nthis is not a model config {")
    with pytest.raises(TritonServerError, match="config.pbtxt"):
        TritonServer(repo).start()
    (tmp_path / "empty").mkdir()
    for missing in (tmp_path / "empty", tmp_path / "nowhere"):
        with pytest.raises(TritonServerError, match="repository"):
            TritonServer(missing).start()


@pytest.mark.slow
def test_broken_model_raises_with_log_and_cleans_up(tmp_path: Path) -> None:
    server = TritonServer(write_model(tmp_path / "repo", model_py=BROKEN_MODEL), startup_timeout_s=60)
    try:
        with pytest.raises(TritonServerError, match="deliberately broken model"):
            server.start()
        assert_gone(server.pid)
        assert "deliberately broken model" in server.log_tail(200)
    finally:
        server.stop()


@pytest.mark.slow
def test_startup_timeout_kills_the_server(tmp_path: Path) -> None:
    shm_before = set(Path("/dev/shm").glob("triton_python_backend_shm_region*"))
    server = TritonServer(write_model(tmp_path / "repo", model_py=SLOW_MODEL), startup_timeout_s=1.0)
    try:
        with pytest.raises(TritonServerError, match="not ready after"):
            server.start()
        assert_gone(server.pid)
        # killed mid-load, the server cannot free its stub's shared memory: stop() must remove it (regions
        # of other servers running meanwhile are mapped by their processes)
        new = set(Path("/dev/shm").glob("triton_python_backend_shm_region*")) - shm_before
        assert not [region for region in new if not _mapped(region)]
    finally:
        server.stop()


@pytest.mark.slow
def test_forgotten_server_is_stopped_at_exit(tmp_path: Path) -> None:
    """A script that never calls stop() must not leave tritonserver running after it exits."""
    script = "import sys; from focoos.builder.server import TritonServer; print(TritonServer(sys.argv[1]).start().pid)"
    done = subprocess.run(
        [sys.executable, "-c", script, str(write_model(tmp_path / "repo"))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert_gone(int(done.stdout.split()[-1]))


PARENT_SCRIPT = """
import sys, time
from focoos.builder.server import TritonServer
server = TritonServer(sys.argv[1]).start()
print(server.pid, flush=True)
sys.stdin.readline()
if sys.argv[2] == "raise":
    raise RuntimeError("unhandled error in the process that started the server")
time.sleep(120)
"""


def watchdogs_of(pgid: int) -> list[int]:
    """PIDs of the watchdogs guarding this server group (found by command line: their parent may be gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if str(pgid) in args and any(a.endswith("watchdog.py") for a in args):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("death", ["SIGKILL", "SIGTERM", "raise"])
def test_parent_death_leaves_no_server_stubs_or_shared_memory(tmp_path: Path, death: str) -> None:
    """However the process that started the server dies, its watchdog or finalizer stops the whole group."""
    repo = write_model(tmp_path / "repo", instances=2)
    with open(tmp_path / "parent.log", "w") as log:
        parent = subprocess.Popen(
            [sys.executable, "-c", PARENT_SCRIPT, str(repo), death], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True,
        )
    pid, regions = None, set()
    try:
        pid = int(parent.stdout.readline() or 0)
        assert pid, (tmp_path / "parent.log").read_text()
        stubs, regions = set(group_members(pid)) - {pid}, group_shm_regions(pid)
        assert len(stubs) >= 2 and len(regions) >= 2 and all(r.exists() for r in regions)
        assert watchdogs_of(pid), "no watchdog for the server"
        if death == "raise":
            parent.stdin.write("go\n")
            parent.stdin.flush()
        else:
            parent.send_signal(getattr(signal, death))
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (group_members(pid) or watchdogs_of(pid)):
            time.sleep(0.2)
        assert group_members(pid) == [], f"left running after {death}: {group_members(pid)}"
        assert not [r for r in regions if r.exists()], f"shared memory left after {death}"
        assert watchdogs_of(pid) == [], "the watchdog did not exit"
    finally:
        parent.kill()
        parent.wait()
        if pid:  # never leak a server, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for region in regions:
            region.unlink(missing_ok=True)


@pytest.mark.slow
def test_explicit_ports_are_used(running: TritonServer, ports: tuple[int, int, int]) -> None:
    grpc_port, http_port, metrics_port = ports
    assert running.grpc_url == f"127.0.0.1:{grpc_port}"
    assert running.http_url == f"http://127.0.0.1:{http_port}"
    assert running.metrics_url == f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=5) as response:
        assert response.status == 200
    np.testing.assert_array_equal(double(running, [21]), [42])
    clash = TritonServer(running.repository, grpc_port=free_port(), http_port=http_port)
    with pytest.raises(TritonServerError, match=str(http_port)):
        clash.start()
    assert clash.pid is None


@pytest.mark.slow
def test_metrics_endpoint(running: TritonServer) -> None:
    double(running, [1, 2])
    with urllib.request.urlopen(running.metrics_url, timeout=5) as response:
        text = response.read().decode()
    assert "nv_inference_request_success" in text
    assert 'model="double"' in text


def test_find_tritonserver_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRITONSERVER_BIN", str(BINARY))
    assert find_tritonserver() == BINARY
    assert TritonServer(write_model(tmp_path / "repo")).binary == BINARY
    with pytest.raises(TritonServerError, match="does-not-exist"):
        find_tritonserver(tmp_path / "does-not-exist")
    monkeypatch.setenv("TRITONSERVER_BIN", str(tmp_path / "also-missing"))
    with pytest.raises(TritonServerError, match="TRITONSERVER_BIN"):
        find_tritonserver()
