"""focoos.client.bench against a real tritonserver serving a repository the builder wrote (no mocks)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import threading
import time
import urllib.request

import cv2
import pytest
from focoos.builder.repository import RepositoryBuilder
from focoos.builder.server import TritonServer, free_port
from focoos.client import InvalidInput
from focoos.client.bench import (
    BenchResult,
    _Window,
    add_bench_arguments,
    bench_command,
    format_table,
    load_images_dir,
    run_bench,
)

from focoos import RuntimeType
from tests.conftest import make_scene

pytestmark = pytest.mark.slow
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def server(small_detr, tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    RepositoryBuilder(root).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="det", target="embedded",
                                max_batch_size=8, preprocess_instances=1, postprocess_instances=1)
    with TritonServer(root) as running:
        yield running


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_images")
    for seed, (h, w) in enumerate([(240, 320), (480, 360), (97, 203)]):
        cv2.imwrite(str(folder / f"scene{seed}.jpg"), cv2.cvtColor(make_scene(h, w, seed=seed), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(list(argv))


def test_two_levels_measure_without_errors(server, images_dir):
    images = sorted(images_dir.glob("*.jpg"))
    results = run_bench(server.grpc_url, "det", images, [1, 2], duration_s=2.0, show_progress=False, warmup_s=0.5)
    assert [r.concurrency for r in results] == [1, 2]
    for r in results:
        assert r.requests > 0 and r.errors == 0 and r.error_kinds == {}
        assert 0 < r.p50_ms <= r.p90_ms <= r.p99_ms and r.mean_ms > 0
        assert r.throughput_rps > 0 and r.duration_s == pytest.approx(2.0, abs=0.5)
        # edge requests count by their share of the window: at most `concurrency` away from the plain count
        assert abs(r.throughput_rps * r.duration_s - r.requests) <= r.concurrency + 0.01
    assert "concurrency" in format_table(results)


def test_lockstep_completions_do_not_quantize_throughput():
    """Dynamic batching makes `concurrency` requests finish together: a plain count of completions in the
    window jumps by a whole group with the window's phase; the fractional count does not."""
    latency, concurrency = 1.5, 8
    for phase in (0.0, 0.4, 1.1):
        window = _Window(start=10.0 + phase)
        for cycle in range(20):
            for _ in range(concurrency):
                started = cycle * latency
                window.record(started, started + latency, "ok")
        window.end = window.start + 15.0
        assert window.completed() / 15.0 == pytest.approx(concurrency / latency)


def test_load_images_dir_reads_only_images(images_dir):
    payloads = load_images_dir(images_dir)
    assert len(payloads) == 3 and all(p[:2] == b"\xff\xd8" for p in payloads)  # the JPEGs, as they are on disk


def test_cli_json_output(server, images_dir, tmp_path, capsys):
    out = tmp_path / "out" / "bench.json"
    args = _args("--url", server.grpc_url, "--model", "det", "--images", str(images_dir), "--concurrency", "2",
                 "--duration", "1.5", "--warmup", "0.3", "--json", "--output", str(out), "--no-progress")
    assert bench_command(args) == 0
    written = json.loads(out.read_text())
    printed = json.loads(capsys.readouterr().out)
    assert written == printed and len(written) == 1
    assert set(written[0]) == set(BenchResult.__dataclass_fields__)
    assert written[0]["concurrency"] == 2 and written[0]["requests"] > 0 and written[0]["errors"] == 0


def test_folder_without_images_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(InvalidInput, match="no .*jpg.* images in"):
        load_images_dir(tmp_path)
    with pytest.raises(InvalidInput, match="not found"):
        load_images_dir(tmp_path / "missing")
    assert bench_command(_args("--model", "det", "--images", str(tmp_path), "--no-progress")) == 2
    assert "no *.jpg/*.jpeg/*.png images" in capsys.readouterr().err


def test_unknown_model_fails_fast_naming_it(server, images_dir, capsys):
    args = _args("--url", server.grpc_url, "--model", "no-such-model", "--images", str(images_dir),
                 "--duration", "5", "--no-progress")
    assert bench_command(args) == 2
    captured = capsys.readouterr()
    assert "ModelNotFound" in captured.err and "no-such-model" in captured.err and captured.out == ""


def test_no_server_fails_fast(images_dir, capsys):
    args = _args("--url", f"127.0.0.1:{free_port()}", "--model", "det", "--images", str(images_dir), "--no-progress")
    assert bench_command(args) == 2
    assert "ServerUnavailable" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("prometheus_client") is None,
                    reason="prometheus-client is not installed (the 'client' extra brings it)")
def test_prometheus_metrics_while_running(server, images_dir):
    port = free_port()
    scrapes: list[str] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                with _NO_PROXY.open(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
                    scrapes.append(response.read().decode())
            except OSError:
                pass
            time.sleep(0.2)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        [result] = run_bench(server.grpc_url, "det", load_images_dir(images_dir), [2], duration_s=2.0,
                             prometheus_port=port, show_progress=False, warmup_s=0.3)
    finally:
        done.set()
        scraper.join()
    assert result.requests > 0
    text = next(s for s in reversed(scrapes) if 'focoos_bench_requests_total{outcome="ok"}' in s)
    assert "focoos_bench_request_latency_seconds_bucket" in text and "focoos_bench_concurrency 2.0" in text
    ok = float(text.split('focoos_bench_requests_total{outcome="ok"}')[1].split()[0])
    assert ok > 0
    with pytest.raises(OSError):  # the metrics server is stopped with the run: the port is free again
        _NO_PROXY.open(f"http://127.0.0.1:{port}/metrics", timeout=1)
