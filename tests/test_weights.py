"""weights_uri over http(s): downloaded once into FOCOOS_CACHE_DIR, sha256-checked, from a real local server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from focoos import ModelManager, WeightsError
from focoos.weights import resolve_weights
from tests.conftest import small_detr_info
from tests.parity import assert_same_detections


@pytest.fixture()
def http_server(tmp_path):
    """Serve tmp_path/www on a free loopback port; yields (base_url, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FOCOOS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_url_weights_download_once_and_load(http_server, cache, small_detr, scene):
    base, root, requests = http_server
    torch.save(small_detr.model.state_dict(), root / "model_final.pth")
    sha = hashlib.sha256((root / "model_final.pth").read_bytes()).hexdigest()
    url = f"{base}/model_final.pth"
    for _ in range(2):
        model = ModelManager.get(
            "x", model_info=small_detr_info(), weights_uri=url, weights_sha256=sha, device="cpu"
        )
    assert requests == ["/model_final.pth"]  # the second load came from the cache
    assert len(list((cache / "weights").iterdir())) == 1
    assert_same_detections(model.infer(scene, threshold=0.0), small_detr.infer(scene, threshold=0.0))


def test_checksum_mismatch_leaves_nothing_in_the_cache(http_server, cache):
    base, root, _ = http_server
    (root / "w.pth").write_bytes(b"weights")
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(f"{base}/w.pth", sha256="0" * 64)
    assert not any((cache / "weights").iterdir())


def test_missing_url_is_a_weights_error(http_server, cache):
    base, _, _ = http_server
    with pytest.raises(WeightsError, match="404"):
        resolve_weights(f"{base}/nothing.pth")


def test_missing_local_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(str(tmp_path / "nope.pth"))
