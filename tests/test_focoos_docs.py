"""The code cells of Focoos 0.25's README, docs and tutorials run here (tests/focoos_docs/, one script per page).

Each script is the page's code, changed only where Focoos needs the internet (its weights, sample URLs, a real
hub account): the bundled digits models, local photos, a small digits dataset and a loopback hub stand in.
FOCOOS_MAX_ITERS caps training at a few steps. One subprocess per script, so each runs as a user's would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import hub_server
from tests.test_hub import HubProcess

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "focoos_docs"
PHOTOS = ROOT / "tests" / "data" / "focoos_reference" / "images"
API_KEY = "docs-key-0123"
DONE = "DOC SCRIPT DONE"


# script -> reason it is skipped here (None: it runs). Keep the README's "Coming from Focoos" table in step.
SCRIPTS: dict[str, str | None] = {
    "readme.py": None,
    "docs_concepts.py": None,
    "docs_inference.py": None,
    "docs_models.py": None,
    "docs_hub.py": None,
    "docs_training.py": None,
    "docs_cli.py": None,
    "tutorials_convert_dataset_ninja.py": None,
    "docs_quantization.py": None,
    "docs_hub_remote_inference.py": "remote (cloud) inference on the hub, RemoteModel.infer, is not implemented here",
}


def _digits_zip(folder: Path, archive: Path) -> Path:
    from focoos.data.digits import main as prepare_digits

    prepare_digits(["--out", str(folder), "--train-images", "4", "--val-images", "2", "--size", "96",
                    "--max-scale", "2.5", "--seed", "0"])
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


@pytest.fixture(scope="module")
def docs_env(tmp_path_factory):
    """Local stand-ins for what the pages fetch: photos, datasets, the hub (a loopback server) and its account."""
    base = tmp_path_factory.mktemp("focoos_docs")
    assets, datasets = base / "assets", base / "datasets"
    assets.mkdir()
    datasets.mkdir()
    archive = _digits_zip(base / "build" / "digits", base / "build" / "digits.zip")
    # the pages' dataset names: README, CLI page, training tutorial
    for name in ("my_dataset.zip", "mydataset.zip", "chess-coco-detection.zip"):
        shutil.copy(archive, datasets / name)
    photo = PHOTOS / "astronaut.jpg"
    for name in ("federer.jpg", "ADE_val_00000034", "motogp.jpg", "pexels-abby-chung.jpg"):
        shutil.copy(photo, assets / name)
    hub_root = base / "hub"
    hub_server.add_user(hub_root, "u-docs", API_KEY, "docs@example.com")
    from focoos import ModelRegistry

    info = ModelRegistry.get_model_info("fai-detr-n-digits").model_dump(mode="json")
    weights = ModelRegistry.registry_dir / info["weights_uri"]
    hub_server.add_model(hub_root, "digits-detector", "u-docs", {**info, "name": "digits-detector"}, weights)
    hub_server.add_dataset(hub_root, "digits-ds", "u-docs", "digits-hub", "detection", "roboflow_coco", archive)
    hub = HubProcess(hub_root)
    hub.start()
    try:
        yield {"base": base, "assets": assets, "datasets": datasets, "hub_url": hub.url}
    finally:
        hub.stop()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_focoos_doc_page_runs(script, docs_env, tmp_path):
    if SCRIPTS[script]:
        pytest.skip(SCRIPTS[script])
    if script == "docs_quantization.py" and importlib.util.find_spec("focoos.infer.quantizer") is None:
        pytest.skip("focoos.infer.quantizer is not available")
    for name in ("motogp.jpg", "image.jpg", "example.jpg", "photo.jpg", "pexels-abby-chung.jpg"):
        shutil.copy(docs_env["assets"] / "federer.jpg", tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("FOCOOS_OFFLINE", "FOCOOS_API_KEY")}
    env.update({
        "FOCOOS_API_KEY": API_KEY, "DEFAULT_HOST_URL": docs_env["hub_url"],
        "FOCOOS_ASSETS_DIR": str(docs_env["assets"]), "FOCOOS_DATASETS_DIR": str(docs_env["datasets"]),
        "FOCOOS_MODELS_DIR": str(tmp_path / "models"), "FOCOOS_EXPORTS_DIR": str(tmp_path / "exports"),
        "FOCOOS_PREDICTIONS_DIR": str(tmp_path / "predictions"), "FOCOOS_CACHE_DIR": str(tmp_path / "cache"),
        "FOCOOS_MAX_ITERS": "1", "FOCOOS_MAX_BATCH_SIZE": "2", "FOCOOS_MAX_BENCHMARK_ITERS": "2",
        "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg",
        "PYTHONPATH": str(ROOT),
    })
    cwd = tmp_path / "tutorials" if script.startswith("tutorials_") else tmp_path  # notebooks read "../datasets"
    cwd.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, str(DOCS / script)], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert DONE in result.stdout
