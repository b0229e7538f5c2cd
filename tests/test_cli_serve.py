"""`focoos build` and `focoos serve` as an operator runs them: defaults that fit the tritonserver here, hints in
the CLI's own syntax, exit 0 on Ctrl-C/SIGTERM, and a failing exit with the server's log when tritonserver dies."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from focoos.builder.server import MissingBackendError, TritonServer, free_port, server_target

from focoos.processing import encode_image
from focoos.samples import digit_canvases
from tests.test_cli_and_quickstart import FOCOOS_BIN, _run

MODEL = "fai-detr-n-digits"  # bundled, with trained weights
STARTUP_S = 300  # only so that a hung server fails the test instead of the suite


class Serve:
    """`focoos serve ARGS` in a subprocess on free ports; its stdout lines arrive in a queue, stderr in a file."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.ports = []
        while len(self.ports) < 3:
            port = free_port()
            if port not in self.ports:
                self.ports.append(port)
        ports = ["--grpc-port", str(self.ports[0]), "--http-port", str(self.ports[1]),
                 "--metrics-port", str(self.ports[2])]
        env = {**os.environ, "FOCOOS_CACHE_DIR": str(cwd / "cache"), "PYTHONWARNINGS": "ignore"}
        self.stderr_path = cwd / "serve.stderr"
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen([str(FOCOOS_BIN), "serve", *args, *ports], cwd=cwd, env=env, text=True,
                                            stdout=subprocess.PIPE, stderr=stderr)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def banner(self) -> str:
        """The 'serving ...' line, once every model is ready."""
        while (line := self.lines.get(timeout=STARTUP_S)) is not None:
            if line.startswith("serving "):
                return line
        raise AssertionError(f"focoos serve exited with {self.process.wait()}: {self.stderr()[-3000:]}")

    def server_pid(self) -> int:
        return int(re.search(r"tritonserver pid (\d+)", self.banner()).group(1))

    def finish(self) -> int:
        return self.process.wait(timeout=STARTUP_S)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A fresh folder after `focoos build --model fai-detr-n-digits`, no target flags."""
    folder = tmp_path_factory.mktemp("build")
    result = _run([str(FOCOOS_BIN), "build", "--model", MODEL], folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "target embedded: " in result.stdout and "has only the python backend" in result.stdout
    assert f"built {MODEL} version 1 (onnx_cpu, fp32, embedded) in model_repository" in result.stdout
    check = _run([str(FOCOOS_BIN), "build", "--check"], folder)
    assert check.returncode == 0, check.stderr
    assert f"{MODEL}: versions [1], detection, onnx_cpu (embedded)" in check.stdout
    return folder


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_build_with_no_flags_serves_here_and_a_stop_signal_exits_0(built, stop):
    serve = Serve([], built)  # `focoos build && focoos serve`: the default repository
    try:
        pid = serve.server_pid()
        if stop == signal.SIGTERM:
            from focoos.client import TritonInferModel

            image = next(iter(digit_canvases(1).values()))
            with TritonInferModel(f"127.0.0.1:{serve.ports[0]}", model_name=MODEL) as client:
                assert client.infer(encode_image(image), threshold=0.5).detections
        serve.process.send_signal(stop)
        assert serve.finish() == 0, serve.stderr()[-3000:]
        assert not Path(f"/proc/{pid}").exists()
    finally:
        serve.kill()


def test_serve_model_exits_non_zero_with_the_log_when_tritonserver_dies(tmp_path):
    serve = Serve([MODEL], tmp_path)  # built into a temporary repository, then served
    try:
        banner = serve.banner()
        repository = Path(re.match(r"serving (.+): grpc", banner).group(1))
        assert (repository / MODEL / "config.pbtxt").is_file()
        os.kill(int(re.search(r"tritonserver pid (\d+)", banner).group(1)), signal.SIGKILL)
        assert serve.finish() != 0
        stderr = serve.stderr()
        assert "tritonserver exited with code -9 (SIGKILL) while serving; its last log lines:" in stderr
        assert f"Started GRPCInferenceService at 127.0.0.1:{serve.ports[0]}" in stderr
        assert not repository.exists()
    finally:
        serve.kill()


def test_rebuild_for_another_target_replaces_versions_and_hints_speak_cli(built, tmp_path, monkeypatch, capsys):
    from focoos.cli import main

    shutil.copytree(built / "model_repository", tmp_path / "model_repository")
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--model", MODEL, "--target", "gpu"]) == 0
    out = capsys.readouterr().out
    assert "target embedded" not in out and f"built {MODEL} version 2 (onnx_trt16, fp32, gpu)" in out
    assert main(["build", "--check"]) == 0  # version 1, built for the python backend, is gone
    assert f"{MODEL}: versions [2], detection, onnx_trt16 (gpu)" in capsys.readouterr().out

    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "MissingBackendError" in err and "(rebuild it with focoos build --target embedded)" in err
    assert "target=" not in err
    with pytest.raises(MissingBackendError, match=r"\(build with target='embedded'"):
        TritonServer("model_repository").start()
    assert server_target()[0] == "embedded"

    assert main(["build", "--model", MODEL, "--target", "cpu", "--runtime", "onnx_trt16"]) == 2
    assert "target cpu runs the network on CPU instances with onnx_cpu" in capsys.readouterr().err
    assert sorted(p.name for p in Path("model_repository", f"{MODEL}_model").iterdir()) == ["2", "config.pbtxt"]
