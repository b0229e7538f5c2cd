"""Throughput at saturation with the CV metrics on against off, in one run on one server.

    .venv/bin/python benchmarks/cv_metrics_overhead.py --duration 15 --rounds 4 --concurrency 8

Builds the bundled detector twice into one embedded repository: `on` with the CV metrics and a drift
reference from held-out digit canvases (so the drift index is computed too), `off` with
`cv_metrics=False`. Both serve the same held-out canvases as JPEG bytes through the gRPC client, closed
loop at `--concurrency` (enough to saturate the server's cores), one model at a time, alternating which
goes first in each round so that slow drifts of the machine fall on both. Prints requests/s per round and
the ratio on/off (median over rounds): the metrics' cost is 1 - ratio.

On a machine shared with other work the throughput ratio moves by more than the cost it measures, so the
script also reports the CPU seconds the server's processes (tritonserver and its Python stubs, one process
group) spent per request in each phase, and an accounting that no other load disturbs: the CPU time of the
metrics code itself (the hooks and the flush thread's counting, in this process, on the answers the server
returned) per image, and the metric calls per flush (each a round trip to the server, about 30 us).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from focoos.builder import RepositoryBuilder, TritonServer
from focoos.builder.python_models import cv_metrics
from focoos.client import TritonInferModel

from focoos import ModelManager, RuntimeType
from focoos.processing import encode_image
from focoos.samples import digit_canvases


def saturate(url: str, name: str, images: list[bytes], concurrency: int, duration_s: float) -> float:
    """Completed requests per second of `concurrency` closed-loop callers over `duration_s`."""
    done = [0] * concurrency

    def caller(i: int) -> None:
        with TritonInferModel(url, name) as client:
            client.infer(images[0])  # connect before the clock matters
            start.wait()
            n = 0
            while time.monotonic() < stop:
                client.infer(images[(i + n) % len(images)])
                n += 1
            done[i] = n

    start = threading.Event()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    began = time.monotonic()
    stop = began + duration_s
    start.set()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - began)


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (from /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state ppid pgrp ...; utime, stime at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class _Calls:
    """pb_utils' metric interface, counting calls."""

    COUNTER, GAUGE = "counter", "gauge"
    calls = 0

    def __init__(self, **_: object) -> None:
        pass

    def Metric(self, labels: dict) -> _Calls:  # noqa: N802 - pb_utils' name
        return self

    def increment(self, value: float) -> None:
        _Calls.calls += 1

    set = increment


class _PbUtils:
    MetricFamily = _Calls


def accounting(model_name: str, url: str, images: list[bytes], settings: dict) -> tuple[float, float]:
    """(CPU us of the metrics code per image, metric calls per flush) over the server's answers to `images`,
    with the model's metrics settings (its METRICS_FILE)."""
    with TritonInferModel(url, model_name) as client:
        answers = [cv_metrics.answers_from_detections(client.infer(im)) for im in images]
    post = cv_metrics.CVMetrics(_PbUtils, settings, "postprocess", "1", flush_s=3600)
    pre = cv_metrics.CVMetrics(_PbUtils, settings, "preprocess", "1", flush_s=3600)
    rounds, sizes = 200, [(256, 256)]
    post.flush(), pre.flush()
    _Calls.calls = 0
    start = time.process_time()
    for _ in range(rounds):
        for answer in answers:  # one request per image, as the saturation runs send them
            pre.observe_inputs(sizes)
            post.observe_results([answer], sizes)
        post.flush(), pre.flush()  # one flush per len(answers) images: more often than 1/s at these rates
    cpu_us = (time.process_time() - start) * 1e6 / (rounds * len(answers))
    calls = _Calls.calls / rounds
    post.close(), pre.close()
    return cpu_us, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-detr-n-digits")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per model per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()

    model = ModelManager.get(args.model, device="cpu")
    images = [encode_image(im, ".jpg") for im in digit_canvases(args.images).values()]
    reference = list(digit_canvases(8, seed=4321).values())
    with tempfile.TemporaryDirectory() as root:
        repo = RepositoryBuilder(root)
        common = {"runtime_type": RuntimeType.ONNX_CPU, "target": "embedded", "max_batch_size": 4}
        repo.add(model, name="on", cv_metrics=True, cv_reference=reference, **common)
        repo.add(model, name="off", cv_metrics=False, **common)
        with TritonServer(root) as server:
            rates: dict[str, list[float]] = {"on": [], "off": []}
            cpu_ms: dict[str, list[float]] = {"on": [], "off": []}
            for r in range(args.rounds):
                for name in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    cpu = group_cpu_s(server.pid)
                    began = time.monotonic()
                    rate = saturate(server.grpc_url, name, images, args.concurrency, args.duration)
                    requests = rate * (time.monotonic() - began - 1.0)  # saturate() waits 1 s before its clock
                    rates[name].append(rate)
                    cpu_ms[name].append((group_cpu_s(server.pid) - cpu) * 1000 / requests)
                print(f"round {r + 1}: on {rates['on'][-1]:.1f} req/s {cpu_ms['on'][-1]:.2f} CPU ms/req, "
                      f"off {rates['off'][-1]:.1f} req/s {cpu_ms['off'][-1]:.2f} CPU ms/req, "
                      f"ratio {rates['on'][-1] / rates['off'][-1]:.3f}", flush=True)
            settings = json.loads((Path(root) / "on_postprocess" / "1" / cv_metrics.METRICS_FILE).read_text())
            cpu_us, calls = accounting("on", server.grpc_url, images, settings)
            time.sleep(2.5)  # the last flush
            text = urllib.request.urlopen(server.metrics_url, timeout=5).read().decode()
    exported = [line for line in text.splitlines() if line.startswith(("focoos_detections_per_image_count",
                                                                       "focoos_drift_psi"))]
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    print("\n".join(exported))
    print(f"{args.model}, concurrency {args.concurrency}, {args.rounds} rounds of {args.duration:.0f} s per model")
    print(f"requests/s median: on {statistics.median(rates['on']):.1f}, off {statistics.median(rates['off']):.1f}")
    print(f"ratio on/off: median {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    on, off = statistics.median(cpu_ms["on"]), statistics.median(cpu_ms["off"])
    print(f"server CPU per request, median: on {on:.2f} ms, off {off:.2f} ms: the metrics cost {on / off - 1:+.1%}")
    print(f"accounting: metrics code {cpu_us:.1f} us CPU per image ({cpu_us / 1000 / off:.3%} of the CPU per request "
          f"off), {calls:.0f} metric calls per flush of both steps (~{calls * 30 / 1000:.1f} ms of round trips per "
          f"second per instance pair)")


if __name__ == "__main__":
    main()
