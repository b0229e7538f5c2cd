"""The README's promises, run as written: quickstart, CLI, and a light `import focoos`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.conftest import make_scene

ROOT = Path(__file__).resolve().parents[1]
FOCOOS_BIN = Path(sys.executable).with_name("focoos")


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOCOOS_CACHE_DIR": str(cwd / "cache"), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_import_focoos_does_not_import_torch():
    code = (
        "import sys, focoos; from focoos import ModelRegistry; ModelRegistry.list_models(); "
        "print('torch' in sys.modules)"
    )
    assert _run([sys.executable, "-c", code], ROOT).stdout.strip() == "False"


@pytest.mark.slow
def test_readme_quickstart_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    quickstart = re.search(r"## Quickstart\s+```python\n(.*?)```", readme, re.S).group(1)
    cv2.imwrite(str(tmp_path / "image.jpg"), make_scene(360, 480))
    (tmp_path / "quickstart.py").write_text(quickstart)
    result = _run([sys.executable, "quickstart.py"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fai-detr-m-coco" in result.stdout and "fps=" in result.stdout
    assert (tmp_path / "runs" / "my_model" / "model_final.pth").is_file()
    assert (tmp_path / "exported" / "model.onnx").is_file()


@pytest.mark.slow
def test_readme_serving_snippet_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"Serving and calling it.*?```python\n(.*?)```", readme, re.S).group(1)
    from focoos.samples import digit_canvases

    image = next(iter(digit_canvases(1).values()))
    cv2.imwrite(str(tmp_path / "image.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (tmp_path / "serve.py").write_text(snippet)
    result = _run([sys.executable, "serve.py"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "['0', '1', '2'" in result.stdout and "detection" in result.stdout
    assert (tmp_path / "gpu_repository" / "fai-detr-n-digits_model" / "1" / "model.onnx").is_file()


def test_cli_models_lists_the_registry(tmp_path):
    result = _run([str(FOCOOS_BIN), "models"], tmp_path)
    assert result.returncode == 0
    assert "fai-detr-m-coco" in result.stdout and "fai-cls-n-coco" in result.stdout


def test_cli_predict_writes_an_annotated_image(tmp_path):
    cv2.imwrite(str(tmp_path / "in.jpg"), make_scene())
    args = [
        str(FOCOOS_BIN),
        "predict",
        "--model",
        "fai-cls-n-coco",
        "--image",
        "in.jpg",
        "--threshold",
        "0.0",
        "--output",
        "out/annotated.jpg",
    ]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    annotated = cv2.imread(str(tmp_path / "out" / "annotated.jpg"))
    assert annotated.shape == (240, 320, 3)
    assert "latency s" in result.stdout


def test_cli_export_and_errors(tmp_path):
    result = _run(
        [str(FOCOOS_BIN), "export", "--model", "fai-cls-n-coco", "--runtime", "onnx_cpu", "--out-dir", "e",
         "--allow-random-weights"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "e" / "model.onnx").is_file()
    bad = _run([str(FOCOOS_BIN), "predict", "--model", "fai-cls-n-coco", "--image", "missing.jpg"], tmp_path)
    assert bad.returncode == 2 and "InvalidInputError: image file not found: missing.jpg" in bad.stderr
