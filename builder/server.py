"""Launch a real ``tritonserver`` on a model repository, with no process ever left behind.

The binary is either a system one (NGC image, ``TRITONSERVER_BIN``) or the one bundled in the
``nvidia-pytriton`` wheel, which only has the python backend (plus ensembles, built into the core).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from focoos.client.control import ADMIN_KEY_NAME, RESTRICTED_PROTOCOLS
from focoos.client.tls import check_tls_files

from focoos.errors import FocoosError

from . import watchdog as watchdog_module
from .python_models.admission import GATE_DIR_ENV
from .watchdog import STOPPED, stop_group

__all__ = ["MissingBackendError", "ServerTLS", "TritonServer", "TritonServerError", "find_tritonserver", "free_port",
           "server_backends", "server_target"]
MODEL_CONTROL_MODES = ("none", "explicit")
LOOPBACK = "127.0.0.1"
# Triton's HTTP endpoint has no TLS: a TLS server keeps it on loopback and closes every API but health (the
# probes') behind this header, whose value is a secret of the launch. Its name tells a caller where to go.
TLS_HTTP_HEADER = "use-grpc-with-tls"
HTTP_APIS_BUT_HEALTH = ("metadata", "inference", "model-config", "statistics", "trace", "logging",
                        "model-repository", "shared-memory")

# Platforms name the backend that serves them; "ensemble" is part of the server core.
_PLATFORM_BACKENDS = {
    "ensemble": "ensemble",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "tensorrt_plan": "tensorrt",
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
}


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TritonServerError(FocoosError, RuntimeError):
    """tritonserver cannot be found, cannot serve the repository, or failed to start."""


class MissingBackendError(TritonServerError):
    """The repository needs backends the server lacks. `target`: the build target this server can load (None if
    none would do), so each interface can say how to rebuild in its own syntax."""

    hint = " (build with target={target!r}: it runs the network in the python backend)"  # the CLI sets its own

    def __init__(self, problem: str, target: str | None) -> None:
        super().__init__(problem)
        self.problem, self.target = problem, target

    def __str__(self) -> str:
        return self.problem + (self.hint.format(target=self.target) if self.target else "")


@dataclass(frozen=True)
class ServerTLS:
    """gRPC TLS of the server. With `client_ca`, mutual TLS: the server only talks to clients whose
    certificate that CA signed.

    Triton's HTTP endpoint cannot do TLS, so with TLS it would be a way around it: HTTP and metrics are bound
    to loopback and HTTP answers only health probes (every other API wants `TLS_HTTP_HEADER`).
    """

    certificate: str | Path
    private_key: str | Path
    client_ca: str | Path | None = None

    def check(self) -> None:
        """The files exist, the key matches the certificate, nothing is expired (a TLSError says which)."""
        check_tls_files(self.client_ca, self.certificate, self.private_key, "server")

    def flags(self) -> list[str]:
        flags = ["--grpc-use-ssl=true", f"--grpc-server-cert={Path(self.certificate).expanduser().resolve()}",
                 f"--grpc-server-key={Path(self.private_key).expanduser().resolve()}"]
        if self.client_ca is not None:
            flags += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={Path(self.client_ca).expanduser().resolve()}"]
        closed = f"{','.join(HTTP_APIS_BUT_HEALTH)}:{TLS_HTTP_HEADER}={secrets.token_urlsafe(32)}"
        return [*flags, f"--http-restricted-api={closed}"]


def free_port() -> int:
    """A TCP port free on the loopback right now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # only a listener conflicts, not TIME_WAIT
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _pytriton_root() -> Path | None:
    try:
        import pytriton
    except ImportError:
        return None
    return Path(pytriton.__file__).resolve().parent / "tritonserver"


def find_tritonserver(binary: str | Path | None = None) -> Path:
    """Resolve the binary: explicit arg, $TRITONSERVER_BIN, PATH (or /opt/tritonserver/bin), then nvidia-pytriton's."""
    candidates: list[tuple[str, Path | None]] = []
    if binary is not None:
        candidates.append(("argument", Path(binary)))
    elif os.environ.get("TRITONSERVER_BIN"):
        candidates.append(("$TRITONSERVER_BIN", Path(os.environ["TRITONSERVER_BIN"])))
    else:
        found = shutil.which("tritonserver") or shutil.which("tritonserver", path="/opt/tritonserver/bin")
        candidates.append(("PATH and /opt/tritonserver/bin", Path(found) if found else None))
        root = _pytriton_root()
        candidates.append(("nvidia-pytriton", root / "bin" / "tritonserver" if root else None))
    for _, path in candidates:
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return path.expanduser().resolve()
    tried = ", ".join(f"{source}: {path or 'not found'}" for source, path in candidates)
    raise TritonServerError(
        f"no executable tritonserver ({tried}); install 'focoos[server]' (nvidia-pytriton) or set TRITONSERVER_BIN"
    )


def _backend_dir(binary: Path) -> Path:
    """Where a tritonserver binary's backends live: nvidia-pytriton's beside it, a system one's in ../backends."""
    root = _pytriton_root()
    if root is not None and binary.is_relative_to(root):
        return root / "backends"
    sibling = binary.parent.parent / "backends"
    return sibling if sibling.is_dir() else Path("/opt/tritonserver/backends")


def server_backends(binary: str | Path | None = None) -> set[str]:
    """The backends a tritonserver can load (`find_tritonserver`'s binary by default), ensembles included."""
    backend_dir = _backend_dir(find_tritonserver(binary))
    found = {p.name for p in backend_dir.iterdir() if p.is_dir()} if backend_dir.is_dir() else set()
    return found | {"ensemble"}


def server_target(binary: str | Path | None = None) -> tuple[str, str]:
    """The build target that the tritonserver `TritonServer` would run here can load, and why.

    'embedded' for a server without the onnxruntime backend (nvidia-pytriton's has only the python one); with
    it (an NGC image), 'gpu' on a machine with an NVIDIA GPU, else 'cpu'. Without any tritonserver here the
    repository is for another machine, most likely an NGC image on a GPU: 'gpu'."""
    try:
        path = find_tritonserver(binary)
    except TritonServerError:
        return "gpu", "no tritonserver on this machine: for an NGC Triton image on a GPU"
    backends = server_backends(path)
    if "onnxruntime" not in backends:
        return "embedded", f"{path} has only the {', '.join(sorted(backends - {'ensemble'}))} backend"
    if Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi"):
        return "gpu", f"{path} has the onnxruntime backend and this machine an NVIDIA GPU"
    return "cpu", f"{path} has the onnxruntime backend and this machine no NVIDIA GPU"


def _model_backends(repository: Path) -> dict[str, str]:
    """Backend each model of the repository needs, read from its config.pbtxt with Triton's own protobuf."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    if not repository.is_dir() or not any(p.is_dir() for p in repository.iterdir()):
        raise TritonServerError(f"model repository {repository} is missing or has no model folders")
    needs: dict[str, str] = {}
    for config_path in sorted(repository.glob("*/config.pbtxt")):
        try:
            config = text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise TritonServerError(f"cannot parse {config_path}: {exc}") from exc
        backend = config.backend or _PLATFORM_BACKENDS.get(config.platform, config.platform)
        needs[config.name or config_path.parent.name] = backend or "unknown (no backend or platform)"
    return needs


def _terminate(process: subprocess.Popen, timeout_s: float, watchdog: subprocess.Popen | None) -> None:
    """Stop the server's group (it leads its own: start_new_session=True), then dismiss the watchdog."""

    def reap(timeout: float | None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)

    stop_group(process.pid, timeout_s, reap_leader=reap)  # stubs may outlive a leader that already exited
    process.wait()
    if watchdog is not None:
        with contextlib.suppress(OSError, ValueError):
            watchdog.communicate(STOPPED, timeout=5.0)
        if watchdog.poll() is None:
            watchdog.kill()
            watchdog.wait()


def _start_watchdog(pgid: int, timeout_s: float) -> subprocess.Popen:
    """A process in a session of its own that stops the group if we die before stop() runs."""
    return subprocess.Popen(
        [sys.executable, "-I", str(Path(watchdog_module.__file__).resolve()), str(pgid), str(timeout_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class TritonServer:
    """A real tritonserver process serving a model repository; a context manager."""

    def __init__(
        self,
        repository: str | Path,
        *,
        grpc_port: int | None = None,
        http_port: int | None = None,
        metrics_port: int | None = None,
        host: str = "127.0.0.1",
        binary: str | Path | None = None,
        startup_timeout_s: float = 120.0,
        log_verbose: int = 0,
        tls: ServerTLS | None = None,
        model_control: str = "none",
        admin_key: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """host: the address every endpoint binds (loopback unless told otherwise). tls: gRPC TLS or mutual TLS
        (HTTP and metrics then stay on loopback, see ServerTLS).
        model_control: 'explicit' loads every model at start and then only on load/unload calls
        (`focoos.client.control.ModelControl`, `focoos swap`). admin_key: model-control and shared-memory
        calls need it (Triton's restricted protocols, gRPC and HTTP)."""
        if model_control not in MODEL_CONTROL_MODES:
            raise TritonServerError(f"model_control must be one of {MODEL_CONTROL_MODES}, got {model_control!r}")
        if tls is not None:
            tls.check()
        self.repository = Path(repository).expanduser().resolve()
        self.host = host
        self.tls = tls
        self.model_control = model_control
        self._admin_key = admin_key
        self.startup_timeout_s = startup_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = list(extra_args)
        self._binary = find_tritonserver(binary)
        ports: list[int] = []
        for port in (grpc_port, http_port, metrics_port):
            while port is None or port in ports:  # three distinct ports, even if the OS repeats one
                port = free_port()
            ports.append(port)
        self.grpc_port, self.http_port, self.metrics_port = ports
        self._tmp = tempfile.TemporaryDirectory(prefix="focoos-triton-")  # removed by its own finalizer
        self.log_path = Path(self._tmp.name) / "tritonserver.log"
        self._process: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._watchdog: subprocess.Popen | None = None
        self._env = dict(os.environ)
        self._env[GATE_DIR_ENV] = self._tmp.name  # the ensembles' admission gates go away with the server
        root = _pytriton_root()
        self._bundled = root is not None and self._binary.is_relative_to(root)
        if self._bundled:
            self._backend_dir = self._bundled_backends(root)
            # The python stub imports numpy from the first python3 on PATH and links nvidia_pytriton.libs.
            libs = str(root.parent.parent / "nvidia_pytriton.libs")
            self._env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self._env.get("PATH", "")])
            self._env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libs, self._env.get("LD_LIBRARY_PATH")]))
        else:
            self._backend_dir = _backend_dir(self._binary)
        self.available_backends: set[str] = server_backends(self._binary)

    def _bundled_backends(self, root: Path) -> Path:
        """The wheel keeps one stub per Python version apart from the backend: join the right one in a backend dir."""
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.is_file():
            raise TritonServerError(f"nvidia-pytriton has no python backend stub for Python {version} ({stub})")
        python_dir = Path(self._tmp.name) / "backends" / "python"
        python_dir.mkdir(parents=True)
        backend = root / "backends" / "python"
        for source in (backend / "libtriton_python.so", backend / "triton_python_backend_utils.py", stub):
            (python_dir / source.name).symlink_to(source)
        return python_dir.parent

    @property
    def binary(self) -> Path:
        return self._binary

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The process's exit status once it has exited; None while it runs (or before start)."""
        return self._process.poll() if self._process is not None else None

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_host(self) -> str:
        """Where HTTP and metrics listen: `host`, or loopback when gRPC uses TLS (see ServerTLS)."""
        return LOOPBACK if self.tls is not None else self.host

    @property
    def http_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.http_host}:{self.metrics_port}/metrics"

    def _check_backends(self) -> None:
        """Fail before launching: a server missing a backend would only say so deep in its log."""
        missing = {name: b for name, b in _model_backends(self.repository).items() if b not in self.available_backends}
        if missing:
            models = ", ".join(f"{name} ({backend})" for name, backend in sorted(missing.items()))
            target = "embedded" if "python" in self.available_backends else None
            raise MissingBackendError(
                f"models need backends that {self._binary} lacks: {models}; missing backends: "
                f"{', '.join(sorted(set(missing.values())))}; it has: {', '.join(sorted(self.available_backends))}",
                target,
            )

    def _command(self) -> list[str]:
        """The launch command; address flags only where this binary's --help lists them."""
        help_text = subprocess.run([str(self._binary), "--help"], capture_output=True, text=True, env=self._env)
        command = [
            str(self._binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={self._backend_dir}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            # Strict readiness is false while any model version loads or unloads: under explicit model control
            # (swaps) the server stays ready, and start() and swaps check the models themselves.
            f"--strict-readiness={str(self.model_control != 'explicit').lower()}",
            "--exit-on-error=true",
            f"--log-verbose={self.log_verbose}",
        ]
        addresses = {"--grpc-address": self.host, "--http-address": self.http_host, "--metrics-address": self.http_host}
        for flag, address in addresses.items():
            if flag in help_text.stdout + help_text.stderr:  # older servers lack some address flags
                command.append(f"{flag}={address}")
            elif address != self.host:
                raise TritonServerError(f"{self._binary} has no {flag}: it cannot keep HTTP and metrics on loopback, "
                                        "which a TLS server needs (its HTTP has no TLS)")
        if self.tls is not None:
            command += self.tls.flags()  # closes HTTP, admin calls included: they go over gRPC
        if self.model_control == "explicit":
            command += ["--model-control-mode=explicit", "--load-model=*"]
        if self._admin_key:
            restricted = f"{','.join(RESTRICTED_PROTOCOLS)}:{ADMIN_KEY_NAME}={self._admin_key}"
            command.append(f"--grpc-restricted-protocol={restricted}")
            if self.tls is None:
                command.append(f"--http-restricted-api={restricted}")
        return command + self.extra_args

    def start(self) -> TritonServer:
        """Launch and block until every model is ready; on any failure the process is gone and the log is quoted."""
        if self._process is not None and self._process.poll() is None:
            return self
        self._check_backends()
        addresses = [(self.host, self.grpc_port), (self.http_host, self.http_port), (self.http_host, self.metrics_port)]
        busy = [port for host, port in addresses if _port_in_use(host, port)]
        if busy:  # another server on our port would answer our readiness probe
            raise TritonServerError(f"ports already in use on {self.host}: {busy}")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
        self._watchdog = _start_watchdog(self._process.pid, 10.0)  # for deaths that skip finalizers (SIGKILL)
        self._finalizer = weakref.finalize(self, _terminate, self._process, 10.0, self._watchdog)  # also at exit
        try:
            self._wait_ready()
        except BaseException:  # Ctrl-C while waiting must not leave a server behind either
            self.stop(timeout_s=5.0)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        models = list(_model_backends(self.repository)) if self.model_control == "explicit" else []
        while not (self.ready() and all(self._health(f"models/{name}/ready", "/v2/") for name in models)):
            if self._process.poll() is not None:
                self.stop(timeout_s=5.0)  # stubs may outlive the server: reap the group before quoting the log
                raise TritonServerError(
                    f"tritonserver exited with code {self._process.returncode}; log tail:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop(timeout_s=5.0)
                raise TritonServerError(
                    f"tritonserver not ready after {self.startup_timeout_s:.0f}s; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL; safe to call any number of times."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None and finalizer.detach() is not None:  # alive: not stopped yet, nor at exit
            _terminate(self._process, timeout_s, self._watchdog)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _health(self, endpoint: str, prefix: str = "/v2/health/") -> bool:
        try:  # no proxy: an http_proxy from the environment must not swallow loopback requests
            with _NO_PROXY.open(f"{self.http_url}{prefix}{endpoint}", timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def ready(self) -> bool:
        """True when the server is ready: with all its models, unless under explicit model control, where a
        swap loading or unloading a version must not pull the server out of a load balancer."""
        return self._health("ready")

    def live(self) -> bool:
        return self._health("live")

    def log_tail(self, n_lines: int = 50) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n_lines:])

    def __repr__(self) -> str:
        return f"TritonServer({str(self.repository)!r}, grpc={self.grpc_url}, http={self.http_url}, pid={self.pid})"
