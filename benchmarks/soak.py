"""Soak: the embedded server at saturation for ten minutes with good and bad inputs mixed.

    python benchmarks/soak.py --duration 600 --concurrency 8 --bad-every 5

Builds the bundled detector into a temporary repository (ONNX Runtime step, python backend), serves
it, and keeps `--concurrency` callers busy. Every `--bad-every`-th call sends a bad input (bytes that are
no image and a truncated JPEG, which the server refuses; an empty payload and pixel arrays of no rows or of
five channels, which the client refuses before sending).
Passes when every good call succeeds and every bad one raises InvalidInput, and prints how memory moved:
  - the proportional set size (PSS, /proc/<pid>/smaps_rollup) summed over tritonserver and its python
    stubs, which counts pages shared between them once;
  - the bytes in the server's /dev/shm regions (the stubs' tensors travel there).
Both are sampled every `--sample-every` seconds; the slope is a least-squares fit after the first minute
(warm-up: arenas, caches and the shared-memory pool grow to their working size first).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.builder.watchdog import group_members, group_shm_regions
from focoos.client import AsyncTritonInferModel, InvalidInput

from focoos import ModelManager, RuntimeType
from focoos.processing import encode_image
from focoos.samples import digit_canvases

WARMUP_S = 60.0


def bad_inputs(good: bytes) -> dict[str, object]:
    """Inputs a caller gets wrong, each of which must come back as InvalidInput."""
    return {
        "not an image": b"certainly not a JPEG" * 10,
        "truncated JPEG": good[: len(good) // 3],
        "empty payload": b"",
        "pixels, no rows": np.zeros((0, 4, 3), np.uint8),
        "pixels, five channels": np.zeros((4, 4, 5), np.uint8),
    }


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_sample(pgid: int) -> dict[str, float]:
    members = group_members(pgid)
    shm = sum(p.stat().st_size for p in group_shm_regions(pgid) if p.exists())
    return {"pss_mib": sum(pss_kib(pid) for pid in members) / 1024, "shm_mib": shm / 2**20,
            "processes": len(members)}


def slope_per_minute(samples: list[tuple[float, dict]], key: str) -> float:
    points = [(t, s[key]) for t, s in samples if t >= WARMUP_S]
    if len(points) < 3:
        return float("nan")
    t, y = np.array(points).T
    return float(np.polyfit(t / 60.0, y, 1)[0])


async def soak(url: str, name: str, good: list[bytes], duration_s: float, concurrency: int, bad_every: int,
               samples: list, pgid: int, sample_every_s: float) -> dict:
    bad = bad_inputs(good[0])
    outcomes: Counter = Counter()
    untyped: list[str] = []
    start = time.monotonic()
    counter = itertools.count()

    async with AsyncTritonInferModel(url, name, inference_timeout_s=60) as client:
        async def worker() -> None:
            while time.monotonic() - start < duration_s:
                index = next(counter)
                if bad_every and index % bad_every == bad_every - 1:
                    label, payload = list(bad.items())[index // bad_every % len(bad)]
                    try:
                        await client.infer(payload)
                        outcomes[f"bad answered: {label}"] += 1
                    except InvalidInput:
                        outcomes["bad -> InvalidInput"] += 1
                    except Exception as exc:  # noqa: BLE001 - what the soak counts
                        outcomes[f"bad -> {type(exc).__name__}"] += 1
                        untyped.append(f"{label}: {exc!r}"[:300])
                    continue
                try:
                    await client.infer(good[index % len(good)])
                    outcomes["good ok"] += 1
                except Exception as exc:  # noqa: BLE001
                    outcomes[f"good -> {type(exc).__name__}"] += 1
                    untyped.append(repr(exc)[:300])

        async def sampler() -> None:
            while time.monotonic() - start < duration_s:
                samples.append((time.monotonic() - start, memory_sample(pgid)))
                await asyncio.sleep(sample_every_s)

        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
    samples.append((time.monotonic() - start, memory_sample(pgid)))
    return {"outcomes": dict(sorted(outcomes.items())), "unexpected": untyped[:10],
            "calls_per_s": sum(outcomes.values()) / (time.monotonic() - start)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds at saturation")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bad-every", type=int, default=5, help="every Nth call is a bad input (0: none)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ModelManager.get("fai-detr-n-digits", device="cpu")
    good = [encode_image(image) for image in digit_canvases(count=4).values()]
    with tempfile.TemporaryDirectory(prefix="focoos-soak-") as root:
        RepositoryBuilder(root).add(model, runtime_type=RuntimeType.ONNX_CPU, name="soak", target="embedded",
                                    max_batch_size=4)
        with TritonServer(root) as server:
            samples: list = []
            pgid = os.getpgid(server.pid)
            result = asyncio.run(soak(server.grpc_url, "soak", good, args.duration, args.concurrency,
                                      args.bad_every, samples, pgid, args.sample_every))
            log_errors = [line for line in server.log_tail(100_000).splitlines() if line.startswith("E")]
            regions = group_shm_regions(pgid)
        shm_left = sorted(p.name for p in regions if p.exists())

    first, last = samples[0][1], samples[-1][1]
    after_warmup = next((s for t, s in samples if t >= WARMUP_S), last)
    result.update({
        "duration_s": args.duration, "concurrency": args.concurrency, "bad_every": args.bad_every,
        "pss_mib": {"start": first["pss_mib"], "after_warmup": after_warmup["pss_mib"], "end": last["pss_mib"],
                    "max": max(s["pss_mib"] for _, s in samples),
                    "slope_after_warmup_mib_per_min": slope_per_minute(samples, "pss_mib")},
        "shm_mib": {"start": first["shm_mib"], "after_warmup": after_warmup["shm_mib"], "end": last["shm_mib"],
                    "max": max(s["shm_mib"] for _, s in samples),
                    "slope_after_warmup_mib_per_min": slope_per_minute(samples, "shm_mib")},
        "processes": sorted({s["processes"] for _, s in samples}),
        "shm_regions": len(regions), "shm_left_after_stop": shm_left,
        "server_log_errors": len(log_errors),
        "server_log_error_kinds": sorted({line[30:110] for line in log_errors})[:5],
    })
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    outcomes = result["outcomes"]
    passed = set(outcomes) <= {"good ok", "bad -> InvalidInput"} and not shm_left
    print("PASS" if passed else "FAIL", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
