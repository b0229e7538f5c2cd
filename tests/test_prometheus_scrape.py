"""The CV metrics as a real Prometheus scrapes them from a real tritonserver: a known set of images goes
through the client, and every count and histogram Prometheus stored must agree with what the client received.

Needs Debian's `prometheus` server binary (the `prometheus` package, as CI installs it): skipped without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter

import numpy as np
import pytest
import yaml
from focoos.builder import RepositoryBuilder, TritonServer
from focoos.builder.python_models import cv_metrics as cv
from focoos.builder.server import free_port
from focoos.client import TritonInferModel

from focoos import RuntimeType
from focoos.processing import InvalidInputError, encode_image
from tests.conftest import make_scene

pytestmark = pytest.mark.slow
NAME = "cvm"
IMAGES = [make_scene(240, 320, seed=1), make_scene(97, 203, seed=3), make_scene(300, 300, seed=4),
          make_scene(1100, 1000, seed=5)]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> bytes:
    with _NO_PROXY.open(url, timeout=5) as response:
        return response.read()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("the prometheus server binary is not installed (Debian package `prometheus`, as .ci/run "
                    "installs it): no live scrape to check")
    return path


@pytest.fixture(scope="module")
def stack(prometheus_binary, small_detr, tmp_path_factory):
    """A repository with CV metrics and a reference from two held-out scenes, its server, and a Prometheus
    scraping it every second."""
    root = tmp_path_factory.mktemp("repository")
    RepositoryBuilder(root).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name=NAME, target="embedded",
                                max_batch_size=2, preprocess_instances=1, postprocess_instances=2,
                                threshold=0.2, cv_reference=[make_scene(seed=11), make_scene(seed=12)])
    for step in (f"{NAME}_preprocess", f"{NAME}_postprocess"):  # a drift index from the first image on
        path = root / step / "1" / cv.METRICS_FILE
        path.write_text(json.dumps({**json.loads(path.read_text()), "min_window_images": 1}))
    work = tmp_path_factory.mktemp("prometheus")
    with TritonServer(root) as server:
        port = free_port()
        config = {"global": {"scrape_interval": "1s"},
                  "scrape_configs": [{"job_name": "triton", "static_configs": [
                      {"targets": [urllib.parse.urlsplit(server.metrics_url).netloc]}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        with open(work / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                [prometheus_binary, f"--config.file={work / 'prometheus.yml'}",
                 f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            yield server, f"http://127.0.0.1:{port}", work
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _query(base: str, expr: str) -> dict[str, float]:
    """An instant query's samples keyed by their `le`, `class`, `signal` or `reason` label ("" without one)."""
    answer = json.loads(_get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    assert answer["status"] == "success", answer
    out = {}
    for series in answer["data"]["result"]:
        labels = series["metric"]
        key = next((labels[k] for k in ("le", "class", "signal", "reason") if k in labels), "")
        out[key] = float(series["value"][1])
    return out


def _scalar(base: str, expr: str) -> float | None:
    return _query(base, expr).get("")


def test_scraped_cv_metrics_match_what_the_client_received(stack):
    server, prometheus, work = stack
    sel = f'model="{NAME}",version="1"'
    with TritonInferModel(server.grpc_url, NAME) as client:
        answers = [client.infer(encode_image(im, ".jpg")) for im in IMAGES[:2]]
        answers += client.infer(IMAGES[2:])  # one batched request of two images
        answers.append(client.infer(IMAGES[0], threshold=1.0))  # nothing kept
        sizes = [im.shape[:2] for im in IMAGES] + [IMAGES[0].shape[:2]]
        with pytest.raises(InvalidInputError):
            client.infer(b"\xff\xd8 not a jpeg at all")
        classes = client.classes

    images = len(answers)
    scores = np.array([d.conf for a in answers for d in a.detections], np.float64)
    tops = np.array([max(d.conf for d in a.detections) for a in answers if a.detections], np.float64)
    assert len(scores) > images and answers[-1].detections == []
    deadline = time.monotonic() + 30
    while _scalar(prometheus, f"sum(focoos_detections_per_image_count{{{sel}}})") != images \
            or _scalar(prometheus, f'sum(focoos_invalid_input_total{{{sel},reason="undecodable"}})') != 1:
        assert time.monotonic() < deadline, (work / "prometheus.log").read_text()[-2000:]
        time.sleep(0.5)
    time.sleep(1.5)  # every flush of both postprocess instances is in a scrape

    def total(name: str) -> float | None:
        return _scalar(prometheus, f"sum({name}{{{sel}}})")

    # counts: exact
    assert total("focoos_detections_per_image_sum") == len(scores)
    assert total("focoos_kept_score_count") == len(scores) and total("focoos_top_score_count") == len(tops)
    assert total("focoos_empty_results_total") == sum(1 for a in answers if not a.detections) == 1
    received = Counter(d.label for a in answers for d in a.detections)
    assert _query(prometheus, f"sum by (class) (focoos_class_detections_total{{{sel}}})") == {
        **dict.fromkeys([*classes, cv.UNKNOWN_CLASS], 0.0), **received}
    assert total("focoos_input_pixels_count") == images
    assert total("focoos_input_pixels_sum") == sum(h * w for h, w in sizes)
    reasons = _query(prometheus, f"sum by (reason) (focoos_invalid_input_total{{{sel}}})")
    assert reasons == {**dict.fromkeys(cv.INVALID_REASONS, 0.0), "undecodable": 1.0}

    # histograms: every bucket is what the client's answers put there
    for name, values in (("kept_score", scores), ("top_score", tops),
                         ("detections_per_image", np.array([len(a.detections) for a in answers], np.float64)),
                         ("input_pixels", np.array([h * w for h, w in sizes], np.float64))):
        buckets = _query(prometheus, f"sum by (le) (focoos_{name}_bucket{{{sel}}})")
        assert buckets == {le: float(np.sum(values <= float(le))) for le in buckets}, name
        assert len(buckets) == len(cv.HISTOGRAMS[name]) + 1
    assert total("focoos_kept_score_sum") == pytest.approx(scores.sum(), rel=1e-6)
    median = _scalar(prometheus, f"histogram_quantile(0.5, sum by (le) (focoos_kept_score_bucket{{{sel}}}))")
    assert 0.2 <= median <= 1.0  # threshold 0.2: nothing kept below it

    # drift against the two reference scenes, per signal, each step its own
    psi = _query(prometheus, f"max by (signal) (focoos_drift_psi{{{sel}}})")
    assert set(psi) == {"detections_per_image", "top_score", "kept_score", "class", "input_pixels"}
    assert all(v >= 0 and np.isfinite(v) for v in psi.values()), psi
