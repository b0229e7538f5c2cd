"""Our embedded Triton ensemble against the FastAPI server a user would write instead, side by side.

    python benchmarks/bench_vs_fastapi.py --model fai-detr-m-coco --size 640 --duration 20

Both serve the same exported ONNX file (random weights unless the model has its own) as subprocesses
on loopback, and the same closed-loop load generator (`focoos.client.bench`) drives each at
concurrency 1 and 8 with three JPEGs: 640x480, 1920x1080 and a 4000x3000 photo. Printed per image and
concurrency: req/s, p50 and p99 for each server and the ratios (ours / FastAPI: > 1 is faster for
throughput, < 1 is faster for latency). `--precision int8|bf16` serves ours in reduced precision against
FastAPI's fp32 (check its accuracy with benchmarks/accuracy_per_runtime.py or the build's accuracy gate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import asdict
from pathlib import Path

import cv2
import httpx
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.builder.repository import PRECISIONS
from focoos.builder.server import free_port
from focoos.client.bench import BenchResult, run_closed_loop, run_level

from focoos import ModelManager, NoWeightsWarning, RuntimeType

HERE = Path(__file__).resolve().parent
IMAGE_SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920), "4000x3000": (3000, 4000)}


def photo_jpegs(quality: int = 90) -> dict[str, bytes]:
    """A real photo (scikit-image's astronaut) resized to each size, as the JPEG a camera or browser sends."""
    import skimage.data

    photo = skimage.data.astronaut()
    jpegs = {}
    for name, (height, width) in IMAGE_SIZES.items():
        resized = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(resized, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        jpegs[name] = data.tobytes()
    return jpegs


def start_fastapi(export_dir: Path, port: int, timeout_s: float = 60.0) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(HERE / "fastapi_baseline.py"), str(export_dir), "--port",
                                str(port)])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the FastAPI server exited") from None
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the FastAPI server did not start")


def bench_fastapi(url: str, payload: bytes, concurrency: int, duration_s: float, warmup_s: float) -> BenchResult:
    async def level() -> BenchResult:
        async with httpx.AsyncClient(timeout=120.0) as client:
            async def send(body: bytes) -> None:
                response = await client.post(url, content=body, params={"threshold": 0.5})
                response.raise_for_status()

            return await run_closed_loop(send, [payload], concurrency, duration_s, warmup_s)

    return asyncio.run(level())


def bench_triton(url: str, name: str, payload: bytes, concurrency: int, duration_s: float,
                 warmup_s: float) -> BenchResult:
    return asyncio.run(run_level(url, name, [payload], concurrency, duration_s, warmup_s=warmup_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-detr-m-coco")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--images", default=",".join(IMAGE_SIZES), help="subset of " + ",".join(IMAGE_SIZES))
    parser.add_argument("--max-batch-size", type=int, default=8, help="the ensemble's dynamic batching limit")
    parser.add_argument("--network-instances", type=int, default=1, help="network step instances")
    parser.add_argument("--network-threads", type=int, default=0, help="intra-op threads each (0: every core)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="our network's precision (FastAPI stays fp32, the baseline); int8 is calibrated on the "
                             "benchmark's photos")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    jpegs = {k: v for k, v in photo_jpegs().items() if k in args.images.split(",")}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWeightsWarning)
        model = ModelManager.get(args.model, im_size=args.size, device="cpu", allow_random_weights=True)
    work = Path(tempfile.mkdtemp(prefix="bench-vs-fastapi-"))
    exported = model.export(RuntimeType.ONNX_CPU, out_dir=work / "export")
    calibration = work / "calibration"
    calibration.mkdir()
    for image, payload in jpegs.items():
        (calibration / f"{image}.jpg").write_bytes(payload)
    RepositoryBuilder(work / "repository").add(model, runtime_type=RuntimeType.ONNX_CPU, name="ours",
                                               target="embedded", max_batch_size=args.max_batch_size,
                                               network_instances=args.network_instances,
                                               network_threads=args.network_threads, precision=args.precision,
                                               calibration_images=calibration if args.precision == "int8" else None)
    port = free_port()
    fastapi = start_fastapi(Path(exported.model_dir), port)
    rows = []
    print(HEADER)
    try:
        with TritonServer(work / "repository") as server:
            for image, payload in jpegs.items():
                for concurrency in concurrencies:
                    # alternate the two servers so neither gets a warmer machine
                    ours = bench_triton(server.grpc_url, "ours", payload, concurrency, args.duration, args.warmup)
                    theirs = bench_fastapi(f"http://127.0.0.1:{port}/infer", payload, concurrency, args.duration,
                                           args.warmup)
                    rows.append((image, concurrency, ours, theirs))
                    print_row(*rows[-1])
    finally:
        fastapi.terminate()
        fastapi.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps([{"image": i, "concurrency": c, "ours": asdict(o), "fastapi": asdict(f)}
                                         for i, c, o, f in rows], indent=2, default=float))


HEADER = (f"{'image':<10} {'conc':>4} | {'ours rps':>8} {'p50':>7} {'p99':>7} | {'fastapi rps':>11} {'p50':>7} "
          f"{'p99':>7} | {'rps x':>6} {'p50 x':>6} | errors")


def print_row(image: str, concurrency: int, ours: BenchResult, theirs: BenchResult) -> None:
    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    print(f"{image:<10} {concurrency:>4} | {ours.throughput_rps:>8.2f} {ours.p50_ms:>7.0f} {ours.p99_ms:>7.0f} | "
          f"{theirs.throughput_rps:>11.2f} {theirs.p50_ms:>7.0f} {theirs.p99_ms:>7.0f} | "
          f"{ratio(ours.throughput_rps, theirs.throughput_rps):>6.2f} {ratio(ours.p50_ms, theirs.p50_ms):>6.2f} | "
          f"{ours.errors}/{theirs.errors}", flush=True)


if __name__ == "__main__":
    main()
