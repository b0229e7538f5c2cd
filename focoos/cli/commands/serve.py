"""`focoos serve`: a repository (or one model, built first) on a real tritonserver until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from focoos.cli.options import add_random_weights_flag, admin_key, given, im_size, library_option
from focoos.cli.repository import BUILD_DEVICE, REPOSITORY, build_model, refuse_random_weights

NAME = "serve"
HELP = "serve a repository (or a model, built first) on a real tritonserver until Ctrl-C"
DESCRIPTION = ("Start tritonserver on a model repository and keep it serving until Ctrl-C or SIGTERM (exit 0). "
               "Given a MODEL, build it first (into a temporary repository unless --repository is given). If "
               "tritonserver dies, exit non-zero with its last log lines, so a supervisor sees the failure. With "
               "$FOCOOS_ADMIN_KEY set, model control and shared memory need that key.")
SERVER = "focoos.builder.server:TritonServer.__init__"
TRITON_PORTS = {"grpc": 8001, "http": 8000, "metrics": 8002}  # Triton's standard ports, which deployments expect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from focoos.builder.server import MODEL_CONTROL_MODES

    parser.add_argument("model", nargs="?", default=None,
                        help="build this model (registry name, model folder or hub:// reference) and serve it")
    library_option(parser, "--repository", type=Path, default_of=REPOSITORY,
                   help="the repository; with MODEL, a temporary one unless given")
    parser.add_argument("--name", default=None, help="with MODEL: served name (default: the model's name)")
    parser.add_argument("--device", default=BUILD_DEVICE, help="with MODEL: where it is loaded to be exported "
                        "(default: %(default)s)")
    parser.add_argument("--im-size", type=im_size, default=None,
                        help="with MODEL: the picture size it takes (default: the model's own)")
    library_option(parser, "--host", default_of=(SERVER, "host"), help="the address every endpoint binds")
    for endpoint, port in TRITON_PORTS.items():
        parser.add_argument(f"--{endpoint}-port", type=int, default=port, help="default: %(default)s")
    parser.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate: gRPC over TLS")
    parser.add_argument("--tls-key", default=None, metavar="PEM", help="key of the server certificate")
    parser.add_argument("--tls-client-ca", default=None, metavar="PEM",
                        help="mutual TLS: only clients with a certificate this CA signed may call")
    library_option(parser, "--model-control", choices=MODEL_CONTROL_MODES, default_of=(SERVER, "model_control"),
                   help="explicit: models change only on load calls (focoos swap)")
    add_random_weights_flag(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C/SIGTERM (exit 0); if tritonserver dies under it, raise with its last log lines."""
    import signal
    import tempfile
    import threading

    from focoos.builder import ServerTLS, TritonServer, TritonServerError
    from focoos.builder.server import MissingBackendError
    from focoos.cli.repository import repository_builder

    tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert or args.tls_key else None
    with contextlib.ExitStack() as stack:
        repository = args.repository
        if args.model:
            if repository is None:
                repository = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="focoos-serve-")))
            build_model(args, repository, {})
        repository = repository_builder(repository).root
        refuse_random_weights(repository, args.allow_random_weights)
        server = TritonServer(repository, grpc_port=args.grpc_port, http_port=args.http_port,
                              metrics_port=args.metrics_port, tls=tls, admin_key=admin_key(),
                              **given(args, host="host", model_control="model_control"))
        try:
            stack.enter_context(server)
        except MissingBackendError as exc:
            exc.hint = " (rebuild it with focoos build --target {target})"
            raise
        stop = threading.Event()  # set before the banner: a stop signal sent as soon as it shows is not lost
        for stop_signal in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell may start us with it ignored
            signal.signal(stop_signal, lambda *_: stop.set())
        print(f"serving {repository}: grpc {server.grpc_url}, http {server.http_url}, "
              f"metrics {server.metrics_url}; tritonserver pid {server.pid} (Ctrl-C stops)", flush=True)
        while server.returncode is None and not stop.wait(0.5):
            pass
        code = server.returncode
        if code is not None:
            killed = f" ({signal.Signals(-code).name})" if code < 0 else ""
            raise TritonServerError(f"tritonserver exited with code {code}{killed} while serving; "
                                    f"its last log lines:\n{server.log_tail()}")
    return 0
