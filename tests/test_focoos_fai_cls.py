"""FAI-CLS against Focoos 0.25: the probe answers as Focoos answers, Focoos' loss and head variants (the
state-dict layout of every FAI-CLS manifest is in tests/test_focoos_families.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from focoos.models.fai_cls.modelling import FaiClassifier, build_model  # noqa: E402
from focoos.models.layers import normalize  # noqa: E402
from focoos.processing import load_image  # noqa: E402
from focoos.processing.postprocess import postprocess_classification  # noqa: E402
from focoos.processing.preprocess import preprocess_images  # noqa: E402
from tests.focoos_reference import manifest, probe_detections, probe_image, probe_outputs, synthetic_network  # noqa: E402

PROBE = "fai-cls-n-coco"
PROBE_THRESHOLD = 1e-4  # what the recorder passed to Focoos' infer
# Measured: 6e-8 (image0) and 4.5e-8 (image1); uint8 (rounded) pixels in: 1.4e-5 and 1.3e-5.
MAX_OUT_DIFF = 1e-4
# float16 recording of values up to ~2.7: half an ulp is ~1e-3.
MAX_INPUT_DIFF = 2e-3


def _config(name: str) -> dict:
    return manifest(name)["model_info"]["config"]


@pytest.fixture(scope="module")
def probe_network() -> FaiClassifier:
    return synthetic_network(PROBE)


def _focoos_input(index: int) -> np.ndarray:
    """Focoos' classification preprocessing of a probe image: bilinear resize to im_size, raw pixels."""
    size = manifest(PROBE)["model_info"]["im_size"]
    return preprocess_images([load_image(probe_image(index))], (size, size))


def _normalised(network: FaiClassifier, pixels: np.ndarray) -> np.ndarray:
    """What the network's backbone sees: its own normalisation (config pixel_mean/pixel_std) of the pixels."""
    return normalize(torch.from_numpy(pixels), network.pixel_mean, network.pixel_std).numpy()


def _logits(network: FaiClassifier, pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        (logits,) = network(torch.from_numpy(np.ascontiguousarray(pixels)))
    return logits.numpy()


def test_criterion_pos_weight_is_the_configs(probe_network: FaiClassifier) -> None:
    """Focoos' BCE pos_weight buffer (config pos_weight per class) is in the checkpoint and kept by the load."""
    assert torch.equal(probe_network.state_dict()["criterion.ce_loss.pos_weight"], torch.full((80,), 2.0))


@pytest.mark.parametrize("index", [0, 1])
def test_preprocessing_gives_focoos_input(probe_network: FaiClassifier, index: int) -> None:
    recorded = probe_outputs(PROBE)[f"image{index}_input"].astype(np.float32)
    ours = _normalised(probe_network, _focoos_input(index))[:, :, ::4, ::4]
    assert ours.shape == recorded.shape
    assert np.abs(ours - recorded).max() < MAX_INPUT_DIFF


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_eval_output_equals_focoos_out0(probe_network: FaiClassifier, index: int, dtype: type) -> None:
    pixels = _focoos_input(index)
    if dtype == np.uint8:  # uint8 in is rounded pixels: same network, looser answer
        pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    diff = np.abs(_logits(probe_network, pixels) - probe_outputs(PROBE)[f"image{index}_out0"]).max()
    assert diff < (MAX_OUT_DIFF if dtype == np.float32 else 1e-3), diff


@pytest.mark.parametrize("index", [0, 1])
def test_postprocessing_applies_focoos_rule_to_out0(index: int) -> None:
    """Focoos: sigmoid, every class strictly over the threshold. Ours lists them best first."""
    logits = probe_outputs(PROBE)[f"image{index}_out0"]
    for threshold in (PROBE_THRESHOLD, 0.5, 0.53):
        (result,) = postprocess_classification(logits, threshold=threshold, top_k=logits.shape[1])
        probs = 1 / (1 + np.exp(-logits[0].astype(np.float64)))
        assert sorted(result.classes.tolist()) == np.flatnonzero(probs > threshold).tolist()
        assert np.all(np.diff(result.scores) <= 0)
        np.testing.assert_allclose(result.scores, probs[result.classes], atol=1e-6)
    (capped,) = postprocess_classification(logits, threshold=0.0, top_k=5)
    assert capped.classes.tolist() == np.argsort(-logits[0], kind="stable")[:5].tolist()


@pytest.mark.parametrize("index", [0, 1])
def test_detections_equal_focoos_infer(probe_network: FaiClassifier, index: int) -> None:
    """The recorded detections came from Focoos' infer() on a PIL image, which Focoos' image_loader turns
    into a channel-swapped (BGR) array; the recorded raw outputs came from RGB. So the detections are
    reproduced by feeding the swapped image (measured conf diff 6e-8)."""
    recorded = probe_detections(PROBE)[index]
    swapped = preprocess_images([load_image(probe_image(index))[..., ::-1].copy()], (224, 224))
    (result,) = postprocess_classification(_logits(probe_network, swapped), PROBE_THRESHOLD, top_k=80)
    assert result.boxes is None
    assert result.classes[: len(recorded)].tolist() == [d["cls_id"] for d in recorded]
    np.testing.assert_allclose(result.scores[: len(recorded)], [d["conf"] for d in recorded], atol=1e-3)


def test_training_mode_gives_logits_and_focoos_loss() -> None:
    from training.losses.classification import ClassificationCriterion

    torch.manual_seed(0)
    config = _config(PROBE)
    network = build_model(config, 80).train()
    logits = network(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 80)
    labels = torch.tensor([3, 7])
    losses = ClassificationCriterion(80, config)(logits, labels)
    target = torch.nn.functional.one_hot(labels, 80).float()
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((80,), 2.0))(logits, target)
    assert list(losses) == ["loss_cls"] and torch.allclose(losses["loss_cls"], expected)
    losses["loss_cls"].backward()
    assert network.cls_head.classifier[2].weight.grad is not None
    focal = ClassificationCriterion(80, {**config, "use_focal_loss": True, "label_smoothing": 0.1})
    assert torch.isfinite(focal(logits.detach(), torch.stack([target[0], target[1]]))["loss_cls"])


def test_head_variants_keep_focoos_layout() -> None:
    config = _config(PROBE)
    two = build_model({**config, "num_layers": 2, "hidden_dim": 64}, 5)
    assert [k for k in two.state_dict() if k.startswith("cls_head")] == [
        "cls_head.classifier.1.weight", "cls_head.classifier.1.bias",
        "cls_head.classifier.4.weight", "cls_head.classifier.4.bias",
    ]  # fmt: skip
    focal = build_model({**config, "use_focal_loss": True, "dense_prediction": True}, 5).eval()
    assert not any(k.startswith("criterion") for k in focal.state_dict())
    with torch.no_grad():
        (logits,) = focal(torch.zeros(1, 3, 64, 64))
    assert logits.shape == (1, 5)
    with pytest.raises(ValueError, match="backbone_config"):
        build_model({"backbone": "resnet18d"}, 5)


@pytest.mark.slow
def test_onnx_export_has_dynamic_batch_and_size(probe_network: FaiClassifier, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "cls.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            probe_network,
            (torch.zeros(1, 3, 96, 96),),
            str(path),
            dynamo=False,
            opset_version=18,
            input_names=["images"],
            output_names=list(probe_network.output_names),
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
        )
    pixels = np.concatenate([_focoos_input(0), _focoos_input(1)])
    (onnx_logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": pixels})
    np.testing.assert_allclose(onnx_logits, _logits(probe_network, pixels), atol=1e-4)
