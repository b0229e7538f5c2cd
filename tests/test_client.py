"""focoos.client against a real tritonserver serving a repository the builder wrote."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch
from focoos.builder.repository import RepositoryBuilder
from focoos.builder.server import TritonServer, free_port
from focoos.client import (
    AsyncTritonInferModel,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    ServerUnavailable,
    TritonInferModel,
)
from PIL import Image

from focoos import RuntimeType
from focoos.processing import encode_image
from tests.conftest import make_scene
from tests.parity import assert_same_detections

pytestmark = pytest.mark.slow
IMAGES = [make_scene(240, 320, seed=1), make_scene(480, 360, seed=2), make_scene(97, 203, seed=3)]
THRESHOLD = 0.0105  # the tiny untrained model scores around 0.01: this keeps a few dozen detections


@pytest.fixture(scope="module")
def repository(small_detr, tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    RepositoryBuilder(root).add(small_detr, runtime_type=RuntimeType.ONNX_CPU, name="det", target="embedded",
                                max_batch_size=8, top_k=150, preprocess_instances=1, postprocess_instances=1)
    return root


@pytest.fixture(scope="module")
def server(repository):
    with TritonServer(repository) as running:
        yield running


@pytest.fixture(scope="module")
def model(server):
    with TritonInferModel(server.grpc_url, model_name="det") as client:
        yield client


def test_import_focoos_client_never_imports_torch():
    code = "import sys, focoos.client; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_discovers_the_model_from_the_server(model):
    assert model.classes == ["red", "green", "blue"] and model.task == "detection" and model.im_size == (160, 160)
    assert model.live() and model.ready() and "det" in model.list_models()
    assert model.metadata()["name"] == "det"


def test_every_input_kind_gives_local_detections(model, small_detr, tmp_path, http_root):
    base, root, _ = http_root
    image = IMAGES[0]
    png = encode_image(image, ".png")
    (tmp_path / "scene.png").write_bytes(png)
    (root / "scene.png").write_bytes(png)
    local = small_detr.infer(image, threshold=THRESHOLD)
    sources = {
        "path": str(tmp_path / "scene.png"),
        "url": f"{base}/scene.png",
        "bytes": png,
        "numpy": image,
        "pil": Image.fromarray(image),
        "torch": torch.from_numpy(image).permute(2, 0, 1),
    }
    for kind, source in sources.items():
        start = time.perf_counter()
        det = model.infer(source, threshold=THRESHOLD)
        wall_s = time.perf_counter() - start
        assert len(det.detections) > 0, kind
        assert_same_detections(det, local)
        stages_s = det.latency.model_dump(exclude_none=True).values()  # seconds, as in Focoos
        assert det.latency.inference > 0 and sum(stages_s) <= wall_s + 1e-3


def test_batch_call_and_annotation(model, small_detr):
    dets = model.infer(IMAGES, threshold=THRESHOLD, annotate=True)
    for det, local, image in zip(dets, small_detr.infer(IMAGES, threshold=THRESHOLD), IMAGES, strict=True):
        assert_same_detections(det, local)
        assert det.image.shape == image.shape and not np.array_equal(det.image, image)
    assert len(model(IMAGES[1], threshold=0.0, top_k=4).detections) == 4


def test_async_client_gathers_concurrent_calls(server, small_detr):
    async def run():
        async with AsyncTritonInferModel(server.grpc_url, "det") as client:
            return await asyncio.gather(*(client.infer(im, threshold=THRESHOLD) for im in IMAGES))

    start = time.perf_counter()
    results = asyncio.run(run())
    wall_s = time.perf_counter() - start
    for det, image in zip(results, IMAGES, strict=True):
        assert_same_detections(det, small_detr.infer(image, threshold=THRESHOLD))
        assert 0 < det.latency.inference <= wall_s  # seconds


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.infer(b"not an image at all"), InvalidInput, "cannot decode"),
        (lambda m: m.infer("/no/such/file.jpg"), InvalidInput, "not found"),
        (lambda m: m.infer(IMAGES[0], threshold=3), InvalidInput, "threshold"),
        (lambda m: m.infer([]), InvalidInput, "empty"),
        (lambda m: m.infer(IMAGES[0], timeout_s=0.001), DeadlineExceeded, "deadline"),
    ],
)
def test_errors_are_typed_and_carry_the_message(model, call, error, message):
    start = time.perf_counter()
    with pytest.raises(error, match=message):
        call(model)
    assert time.perf_counter() - start < 5
    assert model.ready()


def test_unknown_model(server):
    with TritonInferModel(server.grpc_url, "nope", max_retries=0) as client, pytest.raises(ModelNotFound, match="nope"):
        client.infer(IMAGES[0])


def test_no_server_is_server_unavailable_after_retries():
    url = f"127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with TritonInferModel(url, "det", max_retries=2, backoff_s=0.05) as client, pytest.raises(ServerUnavailable):
        client.infer(IMAGES[0])
    assert time.perf_counter() - start < 10


def test_thousand_mixed_requests_from_eight_callers(model, small_detr):
    good = {i: small_detr.infer(IMAGES[i], threshold=THRESHOLD) for i in range(len(IMAGES))}
    corrupt = encode_image(IMAGES[0])[:200]

    def one(i: int) -> str:
        kind = i % 4
        if kind == 3:
            try:
                model.infer(corrupt if i % 8 == 3 else IMAGES[0], threshold=0.5 if i % 8 == 3 else 7.0)
            except InvalidInput:
                return "bad-typed"
            return "bad-answered"
        assert_same_detections(model.infer(IMAGES[kind], threshold=THRESHOLD), good[kind])
        return "good"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(1000)))
    assert outcomes.count("good") == 750 and outcomes.count("bad-typed") == 250
    assert model.ready()


def test_server_restart_during_a_run(repository, small_detr):
    ports = {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    server = TritonServer(repository, **ports).start()
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()
    expected = small_detr.infer(IMAGES[0], threshold=THRESHOLD)

    def caller() -> None:
        with TritonInferModel(server.grpc_url, "det", max_retries=3, backoff_s=0.2, inference_timeout_s=10) as c:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    assert_same_detections(c.infer(IMAGES[0], threshold=THRESHOLD), expected)
                    outcomes.append((time.perf_counter(), "ok"))
                except ServerUnavailable:
                    outcomes.append((time.perf_counter(), "unavailable"))
                except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                    outcomes.append((time.perf_counter(), f"error: {exc!r}"))
                assert time.perf_counter() - start < 15, "a call hung past its timeout"

    threads = [threading.Thread(target=caller) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        server.stop()
        server = TritonServer(repository, **ports).start()
        restarted = time.perf_counter()
        deadline = restarted + 15
        while time.perf_counter() < deadline and not any(t > restarted and o == "ok" for t, o in outcomes):
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        server.stop()
    assert not any(t.is_alive() for t in threads)
    kinds = [o for _, o in outcomes]
    assert set(kinds) <= {"ok", "unavailable"}, set(kinds)
    assert any(t > restarted and o == "ok" for t, o in outcomes)  # calls succeed again once the server is back


def test_readme_client_snippet_shape(server, tmp_path):
    cv2.imwrite(str(tmp_path / "street.jpg"), cv2.cvtColor(IMAGES[1], cv2.COLOR_RGB2BGR))
    with TritonInferModel(server.grpc_url, model_name="det") as model:
        det = model.infer(str(tmp_path / "street.jpg"), threshold=0.4, annotate=True)
        assert det.image.shape == IMAGES[1].shape


def test_cli_predict_over_grpc_prints_and_annotates(server, tmp_path):
    from tests.test_cli_and_quickstart import FOCOOS_BIN, _run

    cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(IMAGES[0], cv2.COLOR_RGB2BGR))
    args = [str(FOCOOS_BIN), "predict", "--url", server.grpc_url, "--model", "det", "--image", "in.png",
            "--threshold", str(THRESHOLD), "--output", "annotated.jpg"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "red" in result.stdout or "green" in result.stdout or "blue" in result.stdout
    assert cv2.imread(str(tmp_path / "annotated.jpg")).shape == IMAGES[0].shape


def test_cli_demo_runs_the_whole_stack(tmp_path):
    from tests.test_cli_and_quickstart import FOCOOS_BIN, _run

    result = _run([str(FOCOOS_BIN), "demo", "--repository", "repo", "--output-dir", "out"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tritonserver ready" in result.stdout and "server stopped" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"digits_{i}.jpg" for i in range(4)]
    # the bundled detector finds digits on canvases of held-out MNIST digits
    assert result.stdout.count("(no detections over the threshold)") < 4
