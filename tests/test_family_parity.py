"""Rule 3 for every registered family and task: eager, exported (ONNX Runtime, TorchScript) and served
answers agree. The cases come from the family specs (`focoos.models.families()`), so a family is
covered the moment it is registered; its smallest registry model is the one tested.
"""

from __future__ import annotations

import pytest
import torch
from focoos.client import TritonInferModel

from focoos import ModelFamily, ModelManager, ModelRegistry, RuntimeType, Task
from focoos.models import families
from focoos.processing import encode_image
from tests.conftest import make_scene
from tests.parity import assert_same_detections
from tests.test_segmentation import assert_same_masks, sharpen

pytestmark = pytest.mark.slow
CASES = [(ModelFamily(name), Task(task)) for name, spec in families().items() for task in sorted(spec.tasks)]
IDS = [f"{family.value}-{task.value}" for family, task in CASES]
MAX_SIZE = 128  # exported and served graphs at a small input keep CPU time low; the architecture is the model's
IMAGES = [make_scene(240, 320, seed=1), make_scene(131, 203, seed=3)]
MASK_TASKS = (Task.INSTANCE_SEGMENTATION, Task.SEMSEG)


def smallest_registry_model(family: ModelFamily, task: Task) -> str:
    """The registry model of this family and task with the smallest input (the bundled digits models first)."""
    infos = [ModelRegistry.get_model_info(n) for n in ModelRegistry.list_models()]
    found = [i for i in infos if i.model_family == family and i.task == task]
    if not found:
        pytest.fail(f"family {family.value} registers task {task.value} but no registry model has both: add one")
    return min(found, key=lambda i: (max(i.input_hw), i.name)).name


def load_case(family: ModelFamily, task: Task):
    """The model at a small input; untrained (no weights offline) mask heads are made decisive."""
    name = smallest_registry_model(family, task)
    size = min(max(ModelRegistry.get_model_info(name).input_hw), MAX_SIZE)
    torch.manual_seed(0)
    model = ModelManager.get(name, im_size=size, device="cpu", allow_random_weights=True)  # offline: random
    if task in MASK_TASKS and model.random_weights is not None:
        sharpen(model)  # random mask heads sit near 0.5 everywhere: pixels could not be compared
    return model


def threshold_for(model) -> float:
    # trained digits models answer confidently; untrained ones need a low threshold to keep detections
    return 0.0 if model.task in (Task.CLASSIFICATION, Task.SEMSEG) else 0.05


def assert_same(model, a, b, image) -> None:
    if model.task in MASK_TASKS:
        assert_same_masks(a, b, image.shape[:2])
    else:
        assert_same_detections(a, b)


@pytest.fixture(scope="module")
def models() -> dict[str, object]:
    return {case_id: load_case(*case) for case_id, case in zip(IDS, CASES, strict=True)}


@pytest.mark.parametrize("runtime_type", [RuntimeType.ONNX_CPU, RuntimeType.TORCHSCRIPT_32])
@pytest.mark.parametrize("case_id", IDS)
def test_exported_equals_eager(models, case_id, runtime_type, tmp_path) -> None:
    model = models[case_id]
    exported = model.export(runtime_type, out_dir=tmp_path / "export")
    threshold = threshold_for(model)
    local = model.infer(IMAGES, threshold=threshold, image_size=model.model_info.input_hw)
    for image, a, b in zip(IMAGES, exported.infer(IMAGES, threshold=threshold), local, strict=True):
        assert b.detections, f"{case_id}: no detections to compare"
        assert_same(model, a, b, image)


@pytest.fixture(scope="module")
def server(models, serve_repository):
    return serve_repository({case_id: (model, RuntimeType.ONNX_CPU) for case_id, model in models.items()})


@pytest.mark.parametrize("case_id", IDS)
def test_served_equals_eager(server, models, case_id) -> None:
    model = models[case_id]
    threshold = threshold_for(model)
    with TritonInferModel(server.grpc_url, case_id) as client:
        assert client.info.task == model.task.value
        # segmenters are served at each image's own size, as eager runs them: the client sends one request per size
        assert bool(client.info.native_max_pixels) == (model.task in MASK_TASKS)
        served = client.infer([encode_image(IMAGES[0], ".png"), IMAGES[1]], threshold=threshold)
    local = model.infer(IMAGES, threshold=threshold)
    for image, a, b in zip(IMAGES, served, local, strict=True):
        assert b.detections, f"{case_id}: no detections to compare"
        assert_same(model, a, b, image)
