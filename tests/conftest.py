"""Shared fixtures: small real models (built with the production code) and images on disk."""

from __future__ import annotations

import atexit
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from focoos import ModelFamily, ModelInfo, ModelManager, Task

# Registry names carry Focoos' weights URLs: tests never reach for them (they build random weights).
os.environ.setdefault("FOCOOS_OFFLINE", "1")
# Runs, hub downloads and datasets go to a throwaway folder, never to the user's ~/FocoosAI.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="focoos-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)  # each test process removes its own
os.environ.setdefault("FOCOOS_MODELS_DIR", str(_SESSION_HOME / "models"))
os.environ.setdefault("FOCOOS_DATASETS_DIR", str(_SESSION_HOME / "datasets"))
os.environ.setdefault("FOCOOS_PREDICTIONS_DIR", str(_SESSION_HOME / "predictions"))
os.environ.pop("FOCOOS_API_KEY", None)

TINY_STDC = {"model_type": "stdc", "base": 32, "layers": [1, 1, 1], "block_num": 4, "block_type": "cat",
             "use_conv_last": False, "out_features": ["res2", "res3", "res4", "res5"]}


def detr_config(dim: int, queries: int, decoder_layers: int, heads: int = 4) -> dict:
    """A small FAI-DETR in Focoos' config schema (the architecture of fai-detr-m-coco, narrower)."""
    return {
        "backbone_config": TINY_STDC, "num_queries": queries,
        "pixel_decoder_out_dim": dim, "pixel_decoder_feat_dim": dim, "pixel_decoder_num_encoder_layers": 1,
        "pixel_decoder_expansion": 0.5, "pixel_decoder_dim_feedforward": 2 * dim, "pixel_decoder_nhead": heads,
        "transformer_predictor_out_dim": dim, "transformer_predictor_hidden_dim": dim,
        "transformer_predictor_dec_layers": decoder_layers, "transformer_predictor_dim_feedforward": 2 * dim,
        "transformer_predictor_nhead": heads, "head_out_dim": dim,
    }


def mask_config(dim: int, queries: int, decoder_layers: int, semantic: bool) -> dict:
    """A small FAI-MF / BiSeNetFormer in Focoos' config schema (only the fields both configs have)."""
    return {
        "backbone_config": TINY_STDC, "num_queries": queries, "pixel_decoder_out_dim": dim,
        "pixel_decoder_feat_dim": dim, "transformer_predictor_out_dim": dim,
        "transformer_predictor_hidden_dim": dim, "transformer_predictor_dec_layers": decoder_layers,
        "transformer_predictor_dim_feedforward": 2 * dim, "head_out_dim": dim,
        "postprocessing_type": "semantic" if semantic else "instance", "predict_all_pixels": semantic,
        "use_mask_score": not semantic, "criterion_num_points": 1024,
    }


SMALL_DETR_CONFIG = {**detr_config(64, 50, 2), "num_classes": 3}


def make_scene(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """An RGB image with a few filled shapes on a textured background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    cv2.rectangle(image, (20, 30), (120, 150), (220, 40, 40), -1)
    cv2.circle(image, (220, 120), 50, (40, 200, 60), -1)
    cv2.rectangle(image, (150, 170), (300, 230), (50, 60, 230), -1)
    return image


# Files that take minutes run first, one per worker, so no worker is left alone with one at the end of a
# `-n 2 --dist loadfile` run; the rest follow largest first (xdist's own order, which pyproject's
# --no-loadscope-reorder hands over to this hook).
SLOW_FILES = ("test_install.py", "test_focoos_docs.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from collections import Counter

    counts = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.path.name not in SLOW_FILES, -counts[item.path], str(item.path)))

@pytest.fixture(scope="session")
def scene() -> np.ndarray:
    return make_scene()


@pytest.fixture(scope="session")
def image_path(tmp_path_factory: pytest.TempPathFactory, scene: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("images") / "scene.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    return path


def small_detr_info(name: str = "tiny-detr") -> ModelInfo:
    return ModelInfo(
        name=name,
        model_family=ModelFamily.DETR,
        task=Task.DETECTION,
        classes=["red", "green", "blue"],
        im_size=160,
        config=dict(SMALL_DETR_CONFIG),
    )


def quiet_get(*args, **kwargs):
    """ModelManager.get opting in to random weights (tests build untrained models on purpose): no warning,
    and repositories and exports built from the model are marked untrained."""
    import torch

    torch.manual_seed(0)
    return ModelManager.get(*args, allow_random_weights=True, **kwargs)


@pytest.fixture(scope="session")
def small_detr():
    return quiet_get("tiny-detr", model_info=small_detr_info(), device="cpu")


@pytest.fixture(scope="session")
def small_cls():
    return quiet_get("fai-cls-n-coco", im_size=96, device="cpu")


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on a free loopback port serving tmp_path/www; yields (base_url, root, requested paths)."""
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


@pytest.fixture(scope="module")
def serve_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable]:
    """`serve_repository({name: (model, runtime_type)})`: build the models into one repository
    (embedded target: every step in the python backend) and start a real tritonserver on free
    loopback ports; servers stop when the module's tests end. `server`: TritonServer's options
    (tls, model_control, admin_key...); `build`: more RepositoryBuilder.add options."""
    from focoos.builder import RepositoryBuilder, TritonServer

    servers = []

    def serve(models: dict, *, max_batch_size: int = 4, server: dict | None = None, build: dict | None = None):
        root = tmp_path_factory.mktemp("repository")
        builder = RepositoryBuilder(root)
        for name, (model, runtime_type) in models.items():
            builder.add(model, runtime_type=runtime_type, name=name, target="embedded",
                        max_batch_size=max_batch_size, preprocess_instances=1, postprocess_instances=1,
                        **(build or {}))
        servers.append(TritonServer(root, **(server or {})))
        return servers[-1].start()

    try:
        yield serve
    finally:
        for server in servers:
            server.stop()



def write_coco_split(folder: Path, count: int, boxes: dict[str, list[int]]) -> None:
    """A Roboflow COCO split: `count` scenes (make_scene seeds 0..count-1), each with `boxes` (name -> xywh)."""
    import json

    folder.mkdir(parents=True)
    images, annotations = [], []
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(make_scene(seed=i), cv2.COLOR_RGB2BGR))
        images.append({"id": i, "file_name": f"{i}.jpg", "height": 240, "width": 320})
        for cls_id, box in enumerate(boxes.values()):
            annotations.append({"id": len(annotations), "image_id": i, "category_id": cls_id, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": i, "name": name} for i, name in enumerate(boxes)]
    (folder / "_annotations.coco.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))


DIGITS_SIZE = 256  # the bundled digits models' input size


@pytest.fixture(scope="session")
def digits_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out digits canvases at the bundled models' size (Roboflow COCO layout): 8 train, 6 valid."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("datasets") / "digits"
    subprocess.run([sys.executable, "-m", "focoos.data.digits", "--out", str(out), "--train-images", "8",
                    "--val-images", "6", "--size", str(DIGITS_SIZE), "--seed", "7"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def digits_val(digits_dataset: Path):
    """The validation split of `digits_dataset` (a MapDataset, as FocoosModel.eval takes)."""
    from focoos.data import AutoDataset, DatasetAugmentations
    from focoos.ports import DatasetLayout, DatasetSplitType

    dataset = AutoDataset(digits_dataset.name, Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, digits_dataset.parent)
    return dataset.get_split(DatasetAugmentations(resolution=DIGITS_SIZE), DatasetSplitType.VAL)
