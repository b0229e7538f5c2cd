"""Timing loop shared by FocoosModel and InferModel benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from focoos.ports import LatencyMetrics
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE


def measure_latency(
    fn: Callable[[], object],
    iterations: int,
    engine: str,
    im_size: int | tuple[int, int],
    device: str,
    warmup: int = 3,
) -> LatencyMetrics:
    """Call fn warmup times, then time `iterations` calls (milliseconds)."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
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
