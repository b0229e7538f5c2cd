"""A script written against Focoos 0.25 runs unchanged: load, infer, export, train, eval, hub:// and the hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import pytest

from focoos import ModelRegistry
from focoos.samples import digit_canvases
from tests import hub_server
from tests.test_hub import HubProcess

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "focoos_style_script.py"
API_KEY = "script-key-0123"


def _digits_zip(tmp_path: Path) -> Path:
    folder = tmp_path / "build" / "digits"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_digits_dataset.py"), "--out", str(folder),
                    "--train-images", "8", "--val-images", "4", "--size", "128", "--seed", "0"],
                   check=True, capture_output=True)
    archive = tmp_path / "build" / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


def test_focoos_style_script_runs_unchanged(tmp_path):
    archive = _digits_zip(tmp_path)
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "digits.zip").write_bytes(archive.read_bytes())

    hub_root = tmp_path / "hub"
    hub_server.add_user(hub_root, "u-script", API_KEY, "script@example.com")
    info = ModelRegistry.get_model_info("fai-detr-n-digits").model_dump(mode="json")
    weights = ModelRegistry.registry_dir / info["weights_uri"]
    hub_server.add_model(hub_root, "digits-detector", "u-script", {**info, "name": "digits-detector"}, weights)
    hub_server.add_dataset(hub_root, "digits-ds", "u-script", "digits-hub", "detection", "roboflow_coco", archive)

    image = next(iter(digit_canvases(1).values()))
    cv2.imwrite(str(tmp_path / "image.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    hub = HubProcess(hub_root)
    hub.start()
    try:
        env = {k: v for k, v in os.environ.items() if k != "FOCOOS_OFFLINE"}
        env.update({"FOCOOS_API_KEY": API_KEY, "DEFAULT_HOST_URL": hub.url, "FOCOOS_DATASETS_DIR": str(datasets),
                    "FOCOOS_MODELS_DIR": str(tmp_path / "models"), "FOCOOS_EXPORTS_DIR": str(tmp_path / "exports"),
                    "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"})
        result = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
    finally:
        hub.stop()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    out = result.stdout
    assert "script done" in out
    infer_seconds = float(out.split("infer seconds ")[1].split()[0])
    assert 0 < infer_seconds < 10  # Focoos' unit: seconds
    local = int(out.split("exported detections ")[1].split()[0])
    assert local > 0 and int(out.split("hub model detections ")[1].split()[0]) == local  # same weights
    assert "user script@example.com" in out and "remote model digits-detector" in out
    assert "hub dataset train images 8" in out
    run = tmp_path / "models" / "fai-detr-n-digits_digits"
    assert (run / "model_final.pth").is_file()
    assert "bbox/AP" in json.loads((run / "model_info.json").read_text())["val_metrics"]
    assert (tmp_path / "models" / "digits-detector" / "model_final.pth").is_file()  # hub cache
