"""Focoos checkpoints load as they are and answer as Focoos answers.

A folder written by Focoos' trainer (its model_info.json + model_final.pth holding {"model": state_dict})
loads through ModelManager.get, and infer() returns the detections Focoos 0.25 recorded for the
synthetic weights of each probe. Registry names carry Focoos' weights URLs: offline they warn once
and build random weights; online they download (tested against a loopback HTTP server).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from focoos import ModelManager, NoWeightsWarning
from focoos.model_registry import ModelRegistry
from focoos.processing.image import load_image
from focoos.processing.masks import decode_mask, paste_mask
from tests import focoos_reference as ref

SUPPORTED_PROBES = ref.supported(ref.PROBE_NAMES)
BOX_TOL_PX = 1
SCORE_TOL = 1e-3
MASK_IOU = 0.99


def write_focoos_folder(name: str, folder: Path) -> Path:
    """What Focoos' trainer leaves: its model_info.json (weights_uri pointing at the run's own absolute path,
    which need not exist here) and model_final.pth as {"model": state_dict}."""
    folder.mkdir(parents=True)
    info = dict(ref.manifest(name)["model_info"], weights_uri=f"/home/focoos/runs/{name}/model_final.pth")
    (folder / "model_info.json").write_text(json.dumps(info, indent=2))
    network = ref.build_network(name)
    torch.save({"model": ref.synthetic_state_dict(name, network)}, folder / "model_final.pth")
    return folder


def _full_mask(det: dict, image_hw: tuple[int, int]) -> np.ndarray:
    return paste_mask(decode_mask(det["mask"]), det["bbox"], image_hw)


def _matches(ours: dict, theirs: dict, image_hw: tuple[int, int]) -> bool:
    if ours["cls_id"] != theirs["cls_id"] or abs(ours["conf"] - theirs["conf"]) > SCORE_TOL:
        return False
    if (ours["bbox"] is None) != (theirs["bbox"] is None):
        return False
    if ours["bbox"] is not None and np.abs(np.subtract(ours["bbox"], theirs["bbox"])).max() > BOX_TOL_PX:
        return False
    if theirs.get("mask"):
        # Focoos' boxes end at the last pixel and its crop mask[y1:y2, x1:x2] drops that last row and
        # column; ours keep the whole mask (pixel-edge boxes). Compare our mask cut the way Focoos cuts.
        x1, y1, x2, y2 = theirs["bbox"]
        a = np.zeros(image_hw, dtype=bool)
        a[y1:y2, x1:x2] = _full_mask(ours, image_hw)[y1:y2, x1:x2]
        b = _full_mask(theirs, image_hw)
        union = np.logical_or(a, b).sum()
        return union == 0 or np.logical_and(a, b).sum() / union >= MASK_IOU
    return True


def assert_focoos_detections(ours: list[dict], theirs: list[dict], image_hw: tuple[int, int]) -> None:
    """Compare as sets: Focoos kept its 50 most confident, and synthetic weights make scores near-tie,
    so detections within SCORE_TOL of that cut may fall on either side of it."""
    cut = min((d["conf"] for d in theirs), default=1.0) + SCORE_TOL if len(theirs) >= 50 else -1.0
    for det in theirs:
        if det["conf"] > cut or cut < 0:
            assert any(_matches(o, det, image_hw) for o in ours), f"Focoos' {det | {'mask': '...'}} not found"
    for det in ours:
        if det["conf"] > cut:
            assert any(_matches(det, t, image_hw) for t in theirs), f"our {det | {'mask': '...'}} is not Focoos'"


@pytest.fixture(scope="module", params=SUPPORTED_PROBES)
def focoos_folder_model(request, tmp_path_factory):
    folder = write_focoos_folder(request.param, tmp_path_factory.mktemp("runs") / request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)  # the folder's weights load: no random weights
        return request.param, ModelManager.get(str(folder), device="cpu")


def test_focoos_folder_infers_focoos_detections(focoos_folder_model):
    """Focoos 0.25 recorded these detections from PIL images, which its image_loader turns from RGB to
    BGR (cv2.cvtColor on an RGB array); its recorded raw outputs are RGB. We read PIL images as RGB, so
    we feed the swapped pixels Focoos actually processed. Where Focoos raised (a mask one pixel wide crops
    to an empty image that cv2.imencode refuses: fai-mf-m-ade), we answer: every mask is a non-empty crop."""
    name, model = focoos_folder_model
    for index, recorded in enumerate(ref.probe_detections(name)):
        image = np.ascontiguousarray(load_image(ref.probe_image(index))[..., ::-1])
        result = model.infer(image, threshold=1e-4)
        if isinstance(recorded, dict):
            assert "imencode" in recorded["error"] and result.detections
            assert all(d.mask and decode_mask(d.mask).size for d in result.detections)
            continue
        ours = [d.model_dump(include={"bbox", "conf", "cls_id", "label", "mask"}) for d in result.detections]
        assert_focoos_detections(ours, recorded, image.shape[:2])
        assert all(d.label == model.classes[d.cls_id] for d in result.detections)


def test_save_writes_focoos_checkpoint_form(focoos_folder_model, tmp_path):
    name, model = focoos_folder_model
    model.save(tmp_path / "again")
    checkpoint = torch.load(tmp_path / "again" / "model_final.pth", weights_only=True)
    assert set(checkpoint) == {"model"}
    assert [(k, list(v.shape)) for k, v in checkpoint["model"].items()] == [
        (k, s) for k, s, _, _ in ref.manifest(name)["state_dict"]
    ]


@pytest.fixture()
def registry_with(tmp_path, monkeypatch):
    """A temporary registry holding Focoos' fai-cls-n-coco JSON with a weights_uri of our choice."""
    monkeypatch.setenv("FOCOOS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FOCOOS_OFFLINE", raising=False)
    registry = tmp_path / "registry"
    registry.mkdir()
    monkeypatch.setattr(ModelRegistry, "registry_dir", registry)

    def write(weights_uri: str) -> str:
        info = dict(ref.manifest("fai-cls-n-coco")["model_info"], weights_uri=weights_uri)
        (registry / "fai-cls-n-coco.json").write_text(json.dumps(info))
        return "fai-cls-n-coco"

    return write


def test_registry_weights_download_once_into_the_cache(http_root, registry_with, capsys):
    base, root, requests = http_root
    network = ref.build_network("fai-cls-n-coco")
    torch.save({"model": ref.synthetic_state_dict("fai-cls-n-coco", network)}, root / "model_final.pth")
    name = registry_with(f"{base}/model_final.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoWeightsWarning)
        first = ModelManager.get(name, device="cpu")
        second = ModelManager.get(name, device="cpu")
    assert requests == ["/model_final.pth"]  # the second load came from the cache
    expected = ref.synthetic_network("fai-cls-n-coco")
    for model in (first, second):
        for key, value in expected.state_dict().items():
            assert torch.equal(model.model.state_dict()[key].cpu(), value), key
    assert "model_final.pth: 100%" in capsys.readouterr().err  # the progress bar


def test_unreachable_registry_weights_warn_once_with_the_url(http_root, registry_with):
    base, _, _ = http_root
    name = registry_with(f"{base}/model_final.pth".replace("127.0.0.1", "unresolvable.invalid"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ModelManager.get(name, device="cpu")
        ModelManager.get(name, device="cpu")
    messages = [str(w.message) for w in caught if issubclass(w.category, NoWeightsWarning)]
    assert len(messages) == 1 and "unresolvable.invalid" in messages[0] and "RANDOM" in messages[0]


def test_offline_mode_does_not_touch_the_network(http_root, registry_with, monkeypatch):
    base, root, requests = http_root
    (root / "model_final.pth").write_bytes(b"never fetched")
    name = registry_with(f"{base}/model_final.pth")
    monkeypatch.setenv("FOCOOS_OFFLINE", "1")
    with pytest.warns(NoWeightsWarning, match="FOCOOS_OFFLINE"):
        ModelManager.get(name, device="cpu")
    assert requests == []
