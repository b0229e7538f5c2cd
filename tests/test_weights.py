"""weights_uri over http(s): downloaded once into FOCOOS_CACHE_DIR, sha256-checked, from a real local server."""

from __future__ import annotations

import copy
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from focoos import ModelManager, WeightsError
from focoos.download import write_complete
from focoos.weights import WeightsUnreachableError, load_weights, resolve_weights
from tests.conftest import small_detr_info
from tests.parity import assert_same_detections


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FOCOOS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FOCOOS_OFFLINE", raising=False)
    return tmp_path / "cache"


def test_url_weights_download_once_and_load(http_root, cache, small_detr, scene):
    base, root, requests = http_root
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


def test_checksum_mismatch_leaves_nothing_in_the_cache(http_root, cache):
    base, root, _ = http_root
    (root / "w.pth").write_bytes(b"weights")
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(f"{base}/w.pth", sha256="0" * 64)
    assert not any((cache / "weights").iterdir())


def test_missing_url_is_a_weights_error(http_root, cache):
    base, _, _ = http_root
    with pytest.raises(WeightsError, match="404"):
        resolve_weights(f"{base}/nothing.pth")


def test_missing_local_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(str(tmp_path / "nope.pth"))


class BodyServer:
    """A loopback HTTP server whose answers misbehave on purpose: GET /<how>/<n> sends n bytes of
    0x07 with `how`: 'short' (announces n + 1000, then closes), 'nolength' (no Content-Length, the
    connection close ends the body) or 'stall' (announces 2n, sends n, then holds until `release`)."""

    def __init__(self) -> None:
        self.sent = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                _, how, size = self.path.split("/")
                body = b"\x07" * int(size)
                self.send_response(200)
                if how != "nolength":
                    self.send_header("Content-Length", str(len(body) + (1000 if how == "short" else len(body))))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                owner.sent.set()
                if how == "stall":
                    owner.release.wait(60)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture()
def body_server():
    server = BodyServer()
    try:
        yield server
    finally:
        server.close()


def _cache_files(cache: Path) -> list[str]:
    folder = cache / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_body_shorter_than_announced_is_not_cached(body_server, cache):
    with pytest.raises(WeightsUnreachableError):
        resolve_weights(f"{body_server.url}/short/5000")
    assert _cache_files(cache) == []  # neither the file nor a .part


def test_body_without_length_is_cached_only_when_its_sha256_matches(body_server, cache):
    url = f"{body_server.url}/nolength/5000"
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(url, sha256=hashlib.sha256(b"\x07" * 4999).hexdigest())  # as if cut short
    assert _cache_files(cache) == []
    path = resolve_weights(url, sha256=hashlib.sha256(b"\x07" * 5000).hexdigest())
    assert path.read_bytes() == b"\x07" * 5000 and _cache_files(cache) == [path.name]


def test_interrupted_write_leaves_no_part_file(tmp_path):
    def chunks():
        yield b"x" * 100
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_complete(chunks(), tmp_path / "w.pth", None)
    assert list(tmp_path.iterdir()) == []


# The child reports each chunk once write_complete has taken it (and written the one before), then blocks.
KILLED_DOWNLOAD = """
import sys
import focoos.weights as weights
write = weights.write_complete
def reporting(chunks, *args, **kwargs):
    def each():
        for chunk in chunks:
            yield chunk
            print("chunk", flush=True)
    return write(each(), *args, **kwargs)
weights.write_complete = reporting
weights.resolve_weights(sys.argv[1])
"""


def test_killed_download_part_is_removed_by_the_next_download(body_server, cache):
    size = 3 << 20  # a few read chunks: the child writes some, then waits for the rest
    child = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, f"{body_server.url}/stall/{size}"],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "FOCOOS_CACHE_DIR": str(cache)})
    try:
        assert child.stdout.readline() == "chunk\n"
    finally:
        child.kill()  # SIGKILL: no finally clause runs in the child
        child.wait()
    parts = [name for name in _cache_files(cache) if name.endswith(".part")]
    assert len(parts) == 1 and f".{child.pid}." in parts[0]
    live = cache / "weights" / f".other.pth.{os.getpid()}.abc.part"  # a download still running here
    live.write_bytes(b"")

    body_server.release.set()
    resolve_weights(f"{body_server.url}/nolength/10")
    assert [name for name in _cache_files(cache) if name.endswith(".part")] == [live.name]


def _state_with(small_detr, key: str, value) -> dict:
    return {**small_detr.model.state_dict(), key: value}


@pytest.mark.parametrize("checkpoint", [
    pytest.param(lambda m: {"model": _state_with(m, "extra", 1.5)}, id="number-among-tensors"),
    pytest.param(lambda m: {"model": _state_with(m, next(iter(m.model.state_dict())), "text")}, id="string-value"),
    pytest.param(lambda m: {"model": {1: torch.zeros(1)}}, id="integer-key"),
    pytest.param(lambda m: {"model": [torch.zeros(1)]}, id="list-state"),
    pytest.param(lambda m: [1, 2, 3], id="list-checkpoint"),
    pytest.param(lambda m: torch.zeros(3), id="tensor-checkpoint"),
])
def test_malformed_checkpoints_are_weights_errors(tmp_path, small_detr, checkpoint):
    torch.save(checkpoint(small_detr), tmp_path / "w.pth")
    with pytest.raises(WeightsError):
        load_weights(copy.deepcopy(small_detr.model), tmp_path / "w.pth")
