"""Closed-loop load generator for a served focoos ensemble, built on AsyncTritonInferModel.

It measures what a user of `focoos.client` gets (request building, gRPC, the ensemble, response
parsing), not a bare gRPC call: `concurrency` asyncio workers each keep one request in flight,
cycling over the same encoded images. Latencies are those of the requests that finish inside the
measurement window (perf_analyzer's rule), so neither warmup nor the drain at the end skews them.
Throughput counts the requests at the window's edges by the share of their time inside it: with
dynamic batching, requests finish in lockstep groups of `concurrency`, and a plain count of
completions then moves by a whole group with the window's phase. Measured at concurrency 8 (one
batch every 1.59 s, 15 s window): the plain count gave 4.80 req/s in three runs out of 5.06 that
Little's law gives (concurrency / mean latency); the fractional count gives 5.06.

    focoos bench --model fai-detr-m-coco --images samples/ --concurrency 1,4,16 --duration 30

Never imports torch (the client's rule); prometheus-client is imported only when metrics are asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focoos.errors import FocoosError

from .aio import AsyncTritonInferModel
from .errors import TRANSIENT, InvalidInputError, TritonClientError
from .options import ClientOptions
from .tls import add_client_tls_arguments, client_tls_fields

__all__ = [
    "BenchError",
    "BenchMetrics",
    "BenchResult",
    "add_bench_arguments",
    "bench_command",
    "format_table",
    "load_images_dir",
    "run_bench",
    "run_closed_loop",
    "run_level",
    "run_open_loop",
    "to_json",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_URL = "localhost:8001"  # Triton's gRPC port on this machine
DEFAULT_CONCURRENCIES = (1, 4, 16)
DEFAULT_DURATION_S = 30.0  # measured per level
DEFAULT_WARMUP_S = 1.0  # of load before each level's window, not counted
ERROR_BACKOFF_S = 0.05  # after UNAVAILABLE / RESOURCE_EXHAUSTED: a refused connection must not spin a core
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# progress(elapsed_s in the window, successful requests so far, errors so far)
ProgressCallback = Callable[[float, int, int], None]


class BenchError(FocoosError, RuntimeError):
    """The bench cannot run as asked (missing optional package, metrics port taken, bad arguments)."""


@dataclass
class BenchResult:
    """One concurrency level. `requests` counts successful requests that finished inside the window,
    `errors` the failed ones (by exception class in `error_kinds`); latencies are of those successful
    requests (NaN when there were none). `throughput_rps` is successful requests per second, those
    crossing an edge of the window counted by the share of their time inside it, so it can differ
    from `requests / duration_s` by up to `concurrency / duration_s`."""

    concurrency: int
    requests: int
    errors: int
    error_kinds: dict[str, int]
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float


class BenchMetrics:
    """Live Prometheus view of a running bench on a registry of its own (not the process-global one).

    Every finished request is recorded, warmup included, since it shows the load sent as it happens;
    the result table counts only the measurement window.
    """

    def __init__(self, port: int, addr: str = "0.0.0.0") -> None:
        try:
            import prometheus_client
        except ImportError as exc:
            raise BenchError(
                "--prometheus-port needs the prometheus-client package: pip install 'focoos[client]' "
                "(or pip install prometheus-client)"
            ) from exc
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.latency = prometheus_client.Histogram(
            "focoos_bench_request_latency_seconds", "Latency of successful bench requests, client side",
            buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.requests = prometheus_client.Counter(
            "focoos_bench_requests", "Bench requests by outcome ('ok' or the client error class)",
            ["outcome"], registry=self.registry,
        )
        self.concurrency = prometheus_client.Gauge(
            "focoos_bench_concurrency", "Concurrency of the level running now", registry=self.registry,
        )
        try:
            served = prometheus_client.start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise BenchError(f"cannot serve bench metrics on {addr}:{port}: {exc}") from exc
        self.port = port
        self._httpd = served[0] if isinstance(served, tuple) else None  # prometheus-client < 0.17 returns None

    def observe(self, latency_s: float, outcome: str) -> None:
        self.requests.labels(outcome=outcome).inc()
        if outcome == "ok":
            self.latency.observe(latency_s)

    def close(self) -> None:
        """Stop serving; the port is free again."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@dataclass
class _Window:
    """Measurement state shared by the workers of one level (one event loop: no locks)."""

    start: float | None = None
    end: float | None = None
    stop: bool = False
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    spans: list[tuple[float, float]] = field(default_factory=list)  # successful requests that overlap the window

    def record(self, started: float, finished: float, outcome: str) -> None:
        if self.start is None or finished < self.start:  # warmup
            return
        if outcome == "ok":
            self.spans.append((started, finished))  # the drain too: the last requests overlap the window
        if self.end is None:  # finished inside the window
            if outcome == "ok":
                self.latencies_s.append(finished - started)
            else:
                self.errors[outcome] += 1

    def completed(self) -> float:
        """Successful requests in the window, each weighted by the share of its time inside it."""
        assert self.start is not None and self.end is not None
        total = 0.0
        for started, finished in self.spans:
            inside = min(finished, self.end) - max(started, self.start)
            if inside > 0:
                total += inside / (finished - started)
            elif finished == started and self.start <= finished <= self.end:  # zero-length: a clock tick
                total += 1.0
        return total


def _summarize(concurrency: int, window: _Window) -> BenchResult:
    assert window.start is not None and window.end is not None
    duration = window.end - window.start
    latencies_ms = np.asarray(window.latencies_s, dtype=np.float64) * 1000.0
    if latencies_ms.size:
        p50, p90, p99 = (float(v) for v in np.percentile(latencies_ms, [50, 90, 99]))
        mean = float(latencies_ms.mean())
    else:
        p50 = p90 = p99 = mean = math.nan
    return BenchResult(
        concurrency=concurrency,
        requests=int(latencies_ms.size),
        errors=sum(window.errors.values()),
        error_kinds=dict(sorted(window.errors.items())),
        duration_s=round(duration, 3),
        throughput_rps=window.completed() / duration if duration > 0 else 0.0,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=mean,
    )


async def run_closed_loop(
    send: Callable[[bytes], Awaitable[object]],
    payloads: list[bytes],
    concurrency: int,
    duration_s: float,
    warmup_s: float = DEFAULT_WARMUP_S,
    progress: ProgressCallback | None = None,
    metrics: BenchMetrics | None = None,
) -> BenchResult:
    """`concurrency` workers each await `send(payload)` back to back; one window of `duration_s` is measured.

    Transport-free, so the same loop can drive our gRPC client and any other server it is compared with.
    """
    if not payloads:
        raise InvalidInputError("no images to send")
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0:
        raise BenchError(f"need concurrency >= 1, duration > 0, warmup >= 0; got {concurrency}, {duration_s}, "
                         f"{warmup_s}")
    window = _Window()
    next_index = itertools.count()  # shared: the images cycle over the whole level, not per worker

    async def worker() -> None:
        while not window.stop:
            payload = payloads[next(next_index) % len(payloads)]
            start = time.perf_counter()
            try:
                await send(payload)
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - a load generator counts failures, it never dies of one
                outcome = type(exc).__name__
                failed: BaseException | None = exc
            else:
                failed = None
            finished = time.perf_counter()
            window.record(start, finished, outcome)
            if metrics is not None:
                metrics.observe(finished - start, outcome)
            if failed is not None:
                await asyncio.sleep(ERROR_BACKOFF_S if isinstance(failed, TRANSIENT) else 0)

    if metrics is not None:
        metrics.concurrency.set(concurrency)
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(warmup_s)
        window.start = time.perf_counter()
        deadline = window.start + duration_s
        if progress is not None:
            progress(0.0, 0, 0)
        while (now := time.perf_counter()) < deadline:
            await asyncio.sleep(min(1.0, deadline - now))
            if progress is not None:
                progress(min(time.perf_counter() - window.start, duration_s), len(window.latencies_s),
                         sum(window.errors.values()))
        window.end = time.perf_counter()
        window.stop = True
        await asyncio.gather(*tasks)  # in-flight requests finish (client timeout), counted by their share
    finally:
        window.stop = True
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    return _summarize(concurrency, window)


@dataclass
class OpenLoopResult:
    """Calls sent at a fixed rate whatever the server does (its backlog cannot slow the sender): how many
    succeeded or failed (by exception class), and latency percentiles of each outcome."""

    rate_rps: float
    sent: int
    ok: int
    error_kinds: dict[str, int]
    latency_ms: dict[str, dict[str, float]]  # outcome -> {"p50", "p99", "max"}


async def run_open_loop(
    send: Callable[[bytes], Awaitable[object]], payloads: list[bytes], rate_rps: float, duration_s: float,
) -> OpenLoopResult:
    """Start one `send(payload)` every 1/rate_rps seconds for `duration_s`, then wait for all of them.

    Overload shows only in an open loop: a closed loop waits for answers, so it never sends faster
    than the server answers.
    """
    if not payloads or rate_rps <= 0 or duration_s <= 0:
        raise BenchError(f"need payloads, rate > 0 and duration > 0; got {len(payloads)}, {rate_rps}, {duration_s}")
    outcomes: dict[str, list[float]] = {}

    async def one(payload: bytes) -> None:
        start = time.perf_counter()
        try:
            await send(payload)
            outcome = "ok"
        except Exception as exc:  # noqa: BLE001 - counted, never raised
            outcome = type(exc).__name__
        outcomes.setdefault(outcome, []).append(time.perf_counter() - start)

    count = max(1, round(rate_rps * duration_s))
    begin, tasks = time.perf_counter(), []
    for index in range(count):
        await asyncio.sleep(max(0.0, begin + index / rate_rps - time.perf_counter()))
        tasks.append(asyncio.create_task(one(payloads[index % len(payloads)])))
    await asyncio.gather(*tasks)
    latency = {
        outcome: {name: float(value) * 1000.0 for name, value in
                  zip(("p50", "p99", "max"), [*np.percentile(values, [50, 99]), max(values)], strict=True)}
        for outcome, values in sorted(outcomes.items())
    }
    errors = {k: len(v) for k, v in sorted(outcomes.items()) if k != "ok"}
    return OpenLoopResult(rate_rps, count, len(outcomes.get("ok", [])), errors, latency)


async def run_level(
    url: str,
    model_name: str,
    payloads: list[bytes],
    concurrency: int,
    duration_s: float,
    threshold: float | None = None,
    warmup_s: float = DEFAULT_WARMUP_S,
    progress: ProgressCallback | None = None,
    metrics: BenchMetrics | None = None,
    options: ClientOptions | None = None,
) -> BenchResult:
    """One closed-loop level against a served model; raises the client's typed error when it cannot be used.

    `options`: the channel's (TLS...). Retries are off (max_retries=0): a retried call would hide the
    error and inflate the latency.
    """
    options = (options or ClientOptions()).model_copy(update={"max_retries": 0})
    async with AsyncTritonInferModel(url, model_name, options=options) as model:
        await model.get_info()  # ModelNotFoundError / ServerUnavailable here: fail before any load is sent

        async def send(payload: bytes) -> object:
            return await model.infer(payload, threshold=threshold)

        return await run_closed_loop(send, payloads, concurrency, duration_s, warmup_s, progress, metrics)


def _tqdm_progress(concurrency: int, duration_s: float) -> tuple[ProgressCallback, Callable[[], None]]:
    """A time-based tqdm bar (seconds of the window) with requests, current rps and errors as postfix.

    The bar opens on the first call, when the window starts: a level that cannot start shows no bar.
    """
    from tqdm import tqdm

    state: dict[str, Any] = {"bar": None, "t": 0.0, "n": 0}

    def update(elapsed: float, requests: int, errors: int) -> None:
        if state["bar"] is None:
            state["bar"] = tqdm(total=round(duration_s, 1), desc=f"concurrency {concurrency}", unit="s",
                                file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}s "
                                                            "[{elapsed}{postfix}]")
        bar, dt = state["bar"], elapsed - state["t"]
        rps = (requests - state["n"]) / dt if dt > 0 else 0.0
        bar.n = round(elapsed, 3)  # time-based: the bar shows seconds of the window, not a request count
        bar.set_postfix(requests=requests, rps=f"{rps:.1f}", errors=errors)
        state["t"], state["n"] = elapsed, requests

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def _read_images(images: Sequence[Path | str | bytes]) -> list[bytes]:
    payloads = []
    for image in images:
        if isinstance(image, bytes | bytearray | memoryview):
            payloads.append(bytes(image))
            continue
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read image {path}: {exc}") from exc
        if not data:
            raise InvalidInputError(f"image file is empty: {path}")
        payloads.append(data)
    if not payloads:
        raise InvalidInputError("no images to send")
    return payloads


def run_bench(
    url: str,
    model_name: str,
    images: Sequence[Path] | Sequence[bytes],
    concurrencies: list[int],
    duration_s: float,
    threshold: float | None = None,
    prometheus_port: int | None = None,
    show_progress: bool = True,
    warmup_s: float = DEFAULT_WARMUP_S,
    options: ClientOptions | None = None,
) -> list[BenchResult]:
    """Run each concurrency level in turn, on the same images; returns one BenchResult per level.

    Images are encoded files (paths or bytes) sent as they are, one per request. Call it from
    synchronous code (it runs its own event loop); from async code await `run_level` instead.
    """
    payloads = _read_images(images)
    if not concurrencies or any(c < 1 for c in concurrencies):
        raise BenchError(f"concurrencies must be a non-empty list of integers >= 1, got {concurrencies}")
    metrics = BenchMetrics(prometheus_port) if prometheus_port is not None else None

    async def levels() -> list[BenchResult]:
        results = []
        for concurrency in concurrencies:
            progress, close = _tqdm_progress(concurrency, duration_s) if show_progress else (None, lambda: None)
            try:
                results.append(await run_level(url, model_name, payloads, concurrency, duration_s, threshold,
                                               warmup_s, progress, metrics, options))
            finally:
                close()
        return results

    try:
        return asyncio.run(levels())
    finally:
        if metrics is not None:
            metrics.close()


def load_images_dir(folder: Path | str) -> list[bytes]:
    """The *.jpg / *.jpeg / *.png files of a folder (not recursive, sorted by name) as encoded bytes."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidInputError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InvalidInputError(f"no {'/'.join('*' + s for s in IMAGE_SUFFIXES)} images in {folder}")
    return _read_images(paths)


def format_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width table, one row per level, then the error kinds of levels that had errors."""
    header = f"{'concurrency':>11} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>9} {'p90 ms':>9} " \
             f"{'p99 ms':>9} {'mean ms':>9}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.concurrency:>11} {r.requests:>9} {r.errors:>7} {r.throughput_rps:>9.1f} {r.p50_ms:>9.2f} "
                     f"{r.p90_ms:>9.2f} {r.p99_ms:>9.2f} {r.mean_ms:>9.2f}")
    for r in results:
        if r.error_kinds:
            kinds = ", ".join(f"{kind}: {count}" for kind, count in r.error_kinds.items())
            lines.append(f"errors at concurrency {r.concurrency}: {kinds}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def to_json(results: Sequence[BenchResult]) -> str:
    """JSON list of the results; NaN latencies (no successful request) become null, which JSON allows."""
    return json.dumps([{k: _json_safe(v) for k, v in asdict(r).items()} for r in results], indent=2)


def _concurrency_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, e.g. 1,4,16; got {text!r}")
    return values


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The `focoos bench` options, on a parser the CLI owns."""
    parser.add_argument("--url", default=DEFAULT_URL, help="Triton gRPC address (host:port; default: %(default)s)")
    parser.add_argument("--model", required=True, help="served ensemble name")
    parser.add_argument("--images", type=Path, required=True, help="folder of *.jpg/*.jpeg/*.png sent as they are")
    parser.add_argument("--concurrency", type=_concurrency_list, default=list(DEFAULT_CONCURRENCIES),
                        help="comma-separated levels, each a closed loop of that many in-flight requests "
                             f"(default: {','.join(map(str, DEFAULT_CONCURRENCIES))})")
    parser.add_argument("--duration", type=_positive_float, default=DEFAULT_DURATION_S,
                        help="seconds measured per level (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S,
                        help="seconds of load before each window, not counted (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the served model's")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON to this file")
    parser.add_argument("--prometheus-port", type=int, default=None,
                        help="serve live bench metrics on this port (needs prometheus-client)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_client_tls_arguments(parser)


def bench_command(args: argparse.Namespace) -> int:
    """`focoos bench`: 0 when every level had successful requests, 1 when one had none, 2 when it could not run."""
    concurrency = args.concurrency if isinstance(args.concurrency, list) else _concurrency_list(args.concurrency)
    try:
        payloads = load_images_dir(args.images)
        results = run_bench(
            args.url, args.model, payloads, concurrency, args.duration, threshold=args.threshold,
            prometheus_port=args.prometheus_port, show_progress=not args.no_progress,
            warmup_s=getattr(args, "warmup", DEFAULT_WARMUP_S), options=ClientOptions(**client_tls_fields(args)),
        )
    except (FocoosError, TritonClientError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    text = to_json(results)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text if args.json else format_table(results))
    return 0 if all(r.requests > 0 for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m focoos.client.bench ...`: the same command as `focoos bench`, without the focoos CLI."""
    parser = argparse.ArgumentParser(prog="focoos bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    return bench_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
