"""Check `focoos bench` (focoos.client.bench) against NVIDIA's perf_analyzer on the same server and images.

    python benchmarks/validate_bench_vs_perf_analyzer.py --model fai-detr-m-coco --im-size 320 \
        --concurrency 1,8 --duration 15

Builds an embedded (python-backend) repository for the model, serves it on the bundled tritonserver,
and at each concurrency runs our closed-loop bench, then perf_analyzer (gRPC, closed loop, the same
JPEG bytes as the UINT8 `IMAGE` tensor [1, nbytes], the server's default threshold 0.5, which is
also what our bench sends). It prints throughput, the ratio ours / perf_analyzer, p50 / p99 of both,
and the client CPU seconds each spent per request (on a small machine the load generator competes
with the server for the same cores). Exit code 1 when a throughput ratio is outside 1 +- --tolerance.

Both count only requests that finish inside the measurement window. perf_analyzer measures in
windows of --pa-window-ms and reports the average of its last 3 stable windows, so the default
--duration (15 s) matches 3 windows of 5 s.

Measured here (2 CPUs, no GPU, load average 3-4 from other work; `--rounds 3`, medians; req/s):

    model                   conc  ours   perf_analyzer  ratio  c/mean ours  c/mean PA
    fai-detr-m-coco @320       1  4.99       5.05       0.988     4.99        5.06
    fai-detr-m-coco @320       8  5.06       5.33       0.949     5.06        5.03
    fai-cls-n-coco @96 (10 s)  1  155.9     170.2       0.916    156.0       171.1
    fai-cls-n-coco @96 (10 s)  8  340.4     369.9       0.920    340.3       370.7

At concurrency 8 on the detector, batches of 8 finish together every 1.59 s and perf_analyzer's
5 s windows hold 3 or 4 of them: its count sits above its own Little's-law figure (5.33 vs 5.03),
ours matches both. On the fast classifier, the gap is the Python client's real cost: about 0.5 ms
more per request (request building, response parsing, grpc.aio) than perf_analyzer's C++ client,
which shows up in p50 at concurrency 1 and as CPU taken from the server on 2 cores at 8.

perf_analyzer setup (2.51: the binary shipped in the tritonclient==2.51.0 manylinux wheel, installed
as <venv>/bin/perf_analyzer; newer perf_analyzer wheels need glibc 2.38). On Debian 12:

    apt-get install -y libb64-0d
    pip install --no-deps --target "$VIRTUAL_ENV/opt/cudart12" nvidia-cuda-runtime-cu12
    export LD_LIBRARY_PATH="$VIRTUAL_ENV/opt/cudart12/nvidia/cuda_runtime/lib:$LD_LIBRARY_PATH"
    perf_analyzer --version        # Perf Analyzer Version 2.51.0

(libcudart.so.12 is only linked, no GPU is used. It is installed in a folder of its own so that it
cannot shadow the CUDA 13 runtime torch uses; `pip install nvidia-cuda-runtime-cu12` into the venv
also works, with LD_LIBRARY_PATH pointing at site-packages/nvidia/cuda_runtime/lib. This script adds
either folder to perf_analyzer's LD_LIBRARY_PATH itself when it finds one, or use --cudart-dir.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.client.bench import BenchResult, run_level

from focoos import ModelManager, NoWeightsWarning, RuntimeType
from focoos.processing import encode_image

PA_LATENCY_COMPONENTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
                         "Server Compute Infer", "Server Compute Output", "Client Recv")


def scenes(count: int, height: int = 480, width: int = 640) -> list[bytes]:
    """Photo-like JPEGs (shapes on a smooth, slightly noisy background): realistic sizes, unlike noise."""
    images = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        gradient = np.linspace(40, 200, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
        image = np.clip(gradient + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(np.uint8)
        for _ in range(6):
            x, y = int(rng.integers(0, width - 80)), int(rng.integers(0, height - 80))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            if rng.random() < 0.5:
                size = (int(rng.integers(30, 200)), int(rng.integers(30, 200)))
                cv2.rectangle(image, (x, y), (x + size[0], y + size[1]), color, -1)
            else:
                cv2.circle(image, (x + 40, y + 40), int(rng.integers(15, 70)), color, -1)
        images.append(encode_image(image))
    return images


def find_perf_analyzer(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "perf_analyzer"),
                                              shutil.which("perf_analyzer")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("perf_analyzer not found: pip install 'tritonclient[all]==2.51.0' puts it next to python, or pass "
             "--perf-analyzer (setup steps in this script's docstring)")


def perf_analyzer_env(cudart_dir: str | None) -> dict[str, str]:
    """LD_LIBRARY_PATH with a folder holding libcudart.so.12 (perf_analyzer links it even without a GPU)."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    candidates = [Path(cudart_dir)] if cudart_dir else [
        Path(sys.prefix) / "opt" / "cudart12" / "nvidia" / "cuda_runtime" / "lib",
        purelib / "nvidia" / "cuda_runtime" / "lib",
    ]
    env = dict(os.environ)
    found = [str(c) for c in candidates if (c / "libcudart.so.12").is_file()]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(found[:1] + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    return env


def check_perf_analyzer(binary: Path, env: dict[str, str]) -> str:
    run = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        missing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env).stdout
        missing = ", ".join(line.split()[0] for line in missing.splitlines() if "not found" in line)
        sys.exit(f"{binary} does not run (missing: {missing or run.stderr.strip()}); see the setup in the docstring")
    return (run.stdout + run.stderr).strip()


def write_input_data(payloads: list[bytes], path: Path) -> None:
    """One entry per image, in our bench's order; each carries its own shape (the IMAGE dim is variable),
    so no --shape flag is needed. b64 content is decoded by perf_analyzer into the raw UINT8 bytes."""
    data = [{"IMAGE": {"b64": base64.b64encode(p).decode(), "shape": [len(p)]}} for p in payloads]
    path.write_text(json.dumps({"data": data}))


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_perf_analyzer(binary: Path, env: dict[str, str], url: str, model: str, input_data: Path, concurrency: int,
                      window_ms: int, workdir: Path) -> tuple[dict[str, float], float, list[str]]:
    """(row of the CSV report, CPU cores perf_analyzer kept busy on average over its run, the command)."""
    report = workdir / f"pa_c{concurrency}.csv"
    command = [str(binary), "-i", "grpc", "-u", url, "-m", model, "--concurrency-range", f"{concurrency}:{concurrency}",
               "--measurement-interval", str(window_ms), "--stability-percentage", "15", "--max-trials", "8",
               "--input-data", str(input_data), "-f", str(report)]
    cpu_before, wall_before = children_cpu_s(), time.perf_counter()  # the running server is not counted (not reaped)
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    cores = (children_cpu_s() - cpu_before) / (time.perf_counter() - wall_before)
    if run.returncode != 0 or not report.is_file():
        sys.exit(f"perf_analyzer failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    with report.open() as handle:
        row = next(csv.DictReader(handle))
    return {key: float(value) for key, value in row.items() if value not in ("", None)}, cores, command


def pa_mean_us(row: dict[str, float]) -> float:
    """perf_analyzer's mean client latency: the sum of its CSV's latency components (usec)."""
    return sum(row[k] for k in PA_LATENCY_COMPONENTS)


async def our_level(url: str, model: str, payloads: list[bytes], concurrency: int, duration_s: float,
                    warmup_s: float) -> tuple[BenchResult, float]:
    """Our result and the CPU cores this process kept busy on average (warmup, window and drain)."""
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    result = await run_level(url, model, payloads, concurrency, duration_s, threshold=0.5, warmup_s=warmup_s)
    return result, (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-detr-m-coco")
    parser.add_argument("--im-size", type=int, default=320)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--duration", type=float, default=15.0, help="our measurement window per level (s)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pa-window-ms", type=int, default=5000, help="perf_analyzer --measurement-interval")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each level this many times, alternating which tool goes first; medians are "
                             "compared (other work on a shared machine then hits both tools alike)")
    parser.add_argument("--images", type=int, default=8, help="synthetic 640x480 JPEGs, cycled by both tools")
    parser.add_argument("--tolerance", type=float, default=0.15)
    parser.add_argument("--perf-analyzer", default=None)
    parser.add_argument("--cudart-dir", default=None, help="folder with libcudart.so.12")
    args = parser.parse_args()

    binary = find_perf_analyzer(args.perf_analyzer)
    env = perf_analyzer_env(args.cudart_dir)
    version = check_perf_analyzer(binary, env)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWeightsWarning)
        model = ModelManager.get(args.model, im_size=args.im_size, device="cpu", allow_random_weights=True)
    payloads = scenes(args.images)
    levels = [int(c) for c in args.concurrency.split(",")]
    runs: dict[int, list[tuple[BenchResult, float, dict[str, float], float]]] = {c: [] for c in levels}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        RepositoryBuilder(workdir / "repository").add(model, runtime_type=RuntimeType.ONNX_CPU, name="bench",
                                                       target="embedded", max_batch_size=8)
        write_input_data(payloads, workdir / "input.json")
        with TritonServer(workdir / "repository") as server:
            print(f"{args.model} at {args.im_size}, ONNX_CPU embedded ensemble, {len(payloads)} JPEGs 640x480 "
                  f"({np.mean([len(p) for p in payloads]) / 1024:.0f} KiB avg), {os.cpu_count()} CPUs; {version}; "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
            for concurrency in levels:
                for round_ in range(args.rounds):
                    ours = partial(asyncio.run, our_level(server.grpc_url, "bench", payloads, concurrency,
                                                          args.duration, args.warmup))
                    theirs = partial(run_perf_analyzer, binary, env, server.grpc_url, "bench",
                                     workdir / "input.json", concurrency, args.pa_window_ms, workdir)
                    if round_ % 2 == 0:
                        (result, our_cpu), (pa, pa_cpu, command) = ours(), theirs()
                    else:
                        (pa, pa_cpu, command), (result, our_cpu) = theirs(), ours()
                    runs[concurrency].append((result, our_cpu, pa, pa_cpu))
                    print(f"concurrency {concurrency} round {round_ + 1}: ours {result.throughput_rps:.2f} req/s "
                          f"({result.requests} in {result.duration_s:.1f}s, {result.errors} errors), perf_analyzer "
                          f"{pa['Inferences/Second']:.2f} req/s, "
                          f"ratio {result.throughput_rps / pa['Inferences/Second']:.3f}"
                          f"; load average {os.getloadavg()[0]:.2f}", flush=True)
                    if round_ == 0:
                        print("  perf_analyzer command: " + " ".join(command), flush=True)

    print()
    header = (f"{'conc':>4} {'ours req/s':>11} {'PA req/s':>9} {'ratio':>6} {'ours c/mean':>12} {'PA c/mean':>10} "
              f"{'ours p50':>9} {'PA p50':>8} {'ours p99':>9} {'PA p99':>8} {'ours cpu ms/req':>16} "
              f"{'PA cpu ms/req':>14}  verdict")
    print(header + "\n" + "-" * len(header))
    failed = False
    for concurrency, measured in runs.items():
        def median(values: list[float]) -> float:
            return float(np.median(values))

        our_rps = median([r.throughput_rps for r, _, _, _ in measured])
        pa_rps = median([pa["Inferences/Second"] for _, _, pa, _ in measured])
        ratio = our_rps / pa_rps if pa_rps else float("nan")
        ok = abs(ratio - 1) <= args.tolerance
        failed |= not ok
        print(f"{concurrency:>4} {our_rps:>11.2f} {pa_rps:>9.2f} {ratio:>6.3f} "
              f"{median([concurrency * 1000 / r.mean_ms for r, _, _, _ in measured]):>12.2f} "
              f"{median([concurrency * 1e6 / pa_mean_us(pa) for _, _, pa, _ in measured]):>10.2f} "
              f"{median([r.p50_ms for r, _, _, _ in measured]):>9.1f} "
              f"{median([pa['p50 latency'] for _, _, pa, _ in measured]) / 1000:>8.1f} "
              f"{median([r.p99_ms for r, _, _, _ in measured]):>9.1f} "
              f"{median([pa['p99 latency'] for _, _, pa, _ in measured]) / 1000:>8.1f} "
              f"{median([cpu * 1000 / r.throughput_rps for r, cpu, _, _ in measured]):>16.2f} "
              f"{median([cpu * 1000 / pa['Inferences/Second'] for _, _, pa, cpu in measured]):>14.2f}  "
              f"{'within' if ok else 'OUTSIDE'} {args.tolerance:.0%}")
    print(f"medians of {args.rounds} round(s); latencies in ms; c/mean = concurrency / mean latency, the throughput "
          "Little's law gives a closed loop (a check on both counts, independent of window edges); client CPU per "
          "request = the load generator's average busy cores over its whole run (ours: this process, perf_analyzer: "
          "its process) / its throughput")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
