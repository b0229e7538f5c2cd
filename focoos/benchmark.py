"""Timing loop shared by FocoosModel and InferModel benchmarks."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from focoos.ports import LatencyMetrics, to_hw
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE

DEFAULT_ITERATIONS = 50  # timed runs of benchmark() when the caller names none (Focoos' default)


def measure_latency(
    fn: Callable[[], object],
    iterations: int,
    engine: str,
    im_size: int | tuple[int, int],
    device: str,
    warmup: int = 3,
) -> LatencyMetrics:
    """Call fn warmup times, then time `iterations` calls (milliseconds).

    FOCOOS_MAX_BENCHMARK_ITERS caps both counts, so unchanged scripts (tutorials, CI checks) run quickly.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    cap = os.environ.get("FOCOOS_MAX_BENCHMARK_ITERS", "").strip()
    if cap.isdigit() and int(cap) >= 1:
        iterations, warmup = min(iterations, int(cap)), min(warmup, int(cap))
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return LatencyMetrics.from_samples_ms(samples, engine, im_size, device)


def random_batch(size_hw: tuple[int, int], batch: int = 1, seed: int = 0) -> np.ndarray:
    """An NCHW batch of pixel noise in the network's real input type."""
    pixels = np.random.default_rng(seed).integers(0, 256, (batch, 3, *size_hw), dtype=np.uint8)
    return pixels.astype(NETWORK_INPUT_DTYPE)


logger = logging.getLogger("focoos")


def report(message: str) -> None:
    """A summary line, as Focoos logs one: through logging where it is configured, else on stderr (stdout stays
    for results a script parses)."""
    if logger.hasHandlers():
        logger.info(message)
    else:
        print(message, file=sys.stderr, flush=True)


def latency_summary(name: str, metrics: LatencyMetrics) -> str:
    """One line: FPS, mean and p95 latency, where and at which size they were measured."""
    height, width = to_hw(metrics.im_size)
    p95 = f", p95 {metrics.p95:.2f} ms" if metrics.p95 is not None else ""
    return (f"benchmark {name} ({metrics.engine} on {metrics.device}, {height}x{width}): "
            f"{metrics.fps:.1f} FPS, mean {metrics.mean:.2f} ms{p95}")


def export_summary(name: str, runtime: str, path: Path, seconds: float) -> str:
    """One line: what was exported, where, its size on disk and how long it took."""
    size_mb = path.stat().st_size / 1e6 if path.is_file() else 0.0
    return f"exported {name} as {runtime}: {path} ({size_mb:.1f} MB) in {seconds:.1f} s"
