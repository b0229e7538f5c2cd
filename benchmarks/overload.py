"""Overload: goodput and latency at 1x, 2x and 3x the rate the server sustains, with and without admission control.

    python benchmarks/overload.py --duration 15

Builds the bundled detector twice into one repository with the builder's defaults (max batch 8, two
preprocess and two postprocess instances, one network instance): `gated` with the default in-flight limit
(`default_max_in_flight`), `ungated` with none (max_in_flight=0: only Triton's queue limits), and serves
both on one embedded tritonserver. It measures the server's capacity in a closed loop on `ungated`
(`--concurrency` callers, fewer than its queue limit: no call is refused), then sends each model in turn an
open loop at each multiple of that capacity and prints, per level and model:
  - goodput: successful calls per second over the capacity;
  - p99 of the successes over the p99 at capacity;
  - the p99 of refusals (ServerBusy), and every other outcome by kind;
  - images the preprocess step decoded per successful call (1.00: no decode was spent on a refused call).
Retries are off, so each refusal is counted once and its latency is the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import urllib.request
import warnings

from focoos.builder import RepositoryBuilder, TritonServer
from focoos.client import AsyncTritonInferModel
from focoos.client.bench import run_closed_loop, run_open_loop

from focoos import ModelManager, RuntimeType
from focoos.processing import encode_image
from focoos.samples import digit_canvases


def decoded(metrics_url: str, name: str) -> float:
    """Requests the preprocess step has decoded so far (its focoos_stage_requests_total; refusals are not counted)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    label = f'model="{name}_preprocess"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("focoos_stage_requests_total") and label in line)


async def measure(url: str, metrics_url: str, payloads: list[bytes], levels: list[float], concurrency: int,
                  duration_s: float) -> None:
    async with (AsyncTritonInferModel(url, "gated", max_retries=0) as gated,
                AsyncTritonInferModel(url, "ungated", max_retries=0) as ungated):
        clients = {"gated": gated, "ungated": ungated}
        senders = {name: functools.partial(client.infer) for name, client in clients.items()}
        # The server's capacity: the ungated model never refuses a closed loop of `concurrency` callers.
        capacity = await run_closed_loop(senders["ungated"], payloads, concurrency, duration_s, warmup_s=2.0)
        print(f"capacity {capacity.throughput_rps:.1f} req/s at concurrency {concurrency}, p50 {capacity.p50_ms:.0f} "
              f"ms, p99 {capacity.p99_ms:.0f} ms, errors {capacity.errors}")
        for level in levels:
            for name, send in senders.items():  # the same offered load, one model after the other
                before = decoded(metrics_url, name)
                result = await run_open_loop(send, payloads, level * capacity.throughput_rps, duration_s)
                decodes = (decoded(metrics_url, name) - before) / max(1, result.ok)
                goodput = result.ok / duration_s / capacity.throughput_rps
                ok_p99 = result.latency_ms.get("ok", {}).get("p99", float("nan"))
                busy_p99 = result.latency_ms.get("ServerBusy", {}).get("p99", float("nan"))
                print(f"  {level:.0f}x {name:8s} ({result.rate_rps:.0f} req/s, {result.sent} sent): goodput "
                      f"{goodput:.2f}, p99 ok / p99 at capacity {ok_p99 / capacity.p99_ms:.2f} ({ok_p99:.0f} ms), "
                      f"refusal p99 {busy_p99:.0f} ms, errors {result.error_kinds}, decodes per answer {decodes:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per level")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop callers measuring capacity")
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--max-in-flight", type=int, default=None, help="the gated model's (default: the builder's)")
    args = parser.parse_args()
    models = {"gated": args.max_in_flight, "ungated": 0}  # served name -> max_in_flight (None: the builder's default)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ModelManager.get("fai-detr-n-digits", device="cpu")
    payloads = [encode_image(image) for image in digit_canvases(8).values()]
    with tempfile.TemporaryDirectory() as root:
        builder = RepositoryBuilder(root)
        for name, max_in_flight in models.items():
            builder.add(model, runtime_type=RuntimeType.ONNX_CPU, name=name, target="embedded",
                        max_in_flight=max_in_flight)
        with TritonServer(root) as server:
            asyncio.run(measure(server.grpc_url, server.metrics_url, payloads, args.levels, args.concurrency,
                                args.duration))


if __name__ == "__main__":
    main()
