"""Eager PyTorch vs ONNX Runtime vs TorchScript latency of one model, side by side in one process.

    python benchmarks/bench_local_runtimes.py --model fai-detr-m-coco --size 640 --iterations 20

Prints LatencyMetrics (network alone and end to end) and each runtime's speed-up over eager.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch

from focoos import ModelManager, NoWeightsWarning, RuntimeType


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fai-detr-m-coco")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", NoWeightsWarning)
    model = ModelManager.get(args.model, im_size=args.size, device="cpu", allow_random_weights=True)

    rows = [("eager", model.benchmark(args.iterations), model.end2end_benchmark(args.iterations))]
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in (RuntimeType.ONNX_CPU, RuntimeType.TORCHSCRIPT_32):
            exported = model.export(runtime, out_dir=Path(tmp) / runtime.value, device="cpu")
            rows.append(
                (runtime.value, exported.benchmark(args.iterations), exported.end2end_benchmark(args.iterations))
            )

    eager_mean = rows[0][1].mean
    print(f"{args.model} at {args.size}x{args.size}, batch 1, {args.threads} threads, {args.iterations} iterations")
    print(f"{'runtime':<16}{'network ms':>12}{'p95':>10}{'end2end ms':>12}{'fps':>8}{'vs eager':>10}")
    for name, network, end2end in rows:
        print(
            f"{name:<16}{network.mean:>12.1f}{network.p95:>10.1f}{end2end.mean:>12.1f}{network.fps:>8.1f}"
            f"{eager_mean / network.mean:>9.2f}x"
        )


if __name__ == "__main__":
    main()
