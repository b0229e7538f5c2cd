"""weights_uri over http(s): downloaded once into FOCOOS_CACHE_DIR, sha256-checked, from a real local server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from focoos import ModelManager, WeightsError
from focoos.weights import resolve_weights
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
