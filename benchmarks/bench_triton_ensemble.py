"""Triton ensemble vs in-process ONNX Runtime on the same images, at concurrency 1 and 8, in one run.

    python benchmarks/bench_triton_ensemble.py --model fai-detr-m-coco --size 640 --requests 40

Builds an embedded (python-backend) repository for the model, serves it on the bundled tritonserver
and reports, per concurrency: end-to-end latency and throughput through the ensemble (JPEG bytes in,
detections out), the network step alone called directly (preprocessed uint8 batch in), and the same
work in-process with InferModel on ONNX Runtime. Ratios are printed against in-process ONNX Runtime.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from focoos.builder import RepositoryBuilder, TritonServer

from focoos import ModelManager, NoWeightsWarning, RuntimeType
from focoos.processing import encode_image, preprocess_images
from focoos.processing.transport import pack_images


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


def run_load(call: Callable[[int], object], requests: int, concurrency: int) -> tuple[float, float, float]:
    """Run `requests` calls over `concurrency` threads; returns (p50 ms, p99 ms, requests/s)."""
    latencies: list[float] = []

    def timed(i: int) -> None:
        start = time.perf_counter()
        call(i)
        latencies.append((time.perf_counter() - start) * 1000)

    call(0)  # warm
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(timed, range(requests)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return statistics.median(latencies), latencies[int(0.99 * (len(latencies) - 1))], requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-detr-m-coco")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--network-threads", type=int, default=2, help="intra-op threads of the served network step")
    args = parser.parse_args()
    warnings.simplefilter("ignore", NoWeightsWarning)

    model = ModelManager.get(args.model, im_size=args.size, device="cpu", allow_random_weights=True)
    images = _images(8)
    jpegs = [encode_image(im) for im in images]
    with tempfile.TemporaryDirectory() as tmp:
        local = model.export(RuntimeType.ONNX_CPU, out_dir=Path(tmp) / "export")
        repo = RepositoryBuilder(Path(tmp) / "repository")
        repo.add(model, runtime_type=RuntimeType.ONNX_CPU, name="bench", target="embedded", max_batch_size=8,
                 network_threads=args.network_threads)
        with TritonServer(repo.root) as server, grpcclient.InferenceServerClient(server.grpc_url) as client:

            def ensemble(i: int) -> None:
                packed, _ = pack_images([jpegs[i % len(jpegs)]])
                tensor = grpcclient.InferInput("IMAGE", list(packed.shape), "UINT8")
                tensor.set_data_from_numpy(packed)
                client.infer("bench", [tensor], parameters={"threshold": 0.5})

            batches = [preprocess_images([im], model.resolution) for im in images]

            def network_only(i: int) -> None:
                tensor = grpcclient.InferInput("images", list(batches[0].shape), "UINT8")
                tensor.set_data_from_numpy(batches[i % len(batches)])
                client.infer("bench_model", [tensor])

            def in_process(i: int) -> None:
                local.infer(jpegs[i % len(jpegs)], threshold=0.5)

            print(f"{args.model} at {args.size}, JPEG 640x480 inputs, {args.requests} requests per row, CPU only")
            print(f"{'path':<26}{'conc':>5}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>9}{'vs in-process':>15}")
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                base = run_load(in_process, args.requests, concurrency)
                for name, fn in (("in-process onnxruntime", None), ("triton ensemble", ensemble),
                                 ("triton network step only", network_only)):
                    p50, p99, rps = base if fn is None else run_load(fn, args.requests, concurrency)
                    print(f"{name:<26}{concurrency:>5}{p50:>10.1f}{p99:>10.1f}{rps:>9.2f}{rps / base[2]:>14.2f}x")


if __name__ == "__main__":
    main()
