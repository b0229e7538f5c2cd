"""FAI-DETR against Focoos 0.25: the probe's recorded outputs and detections, ONNX export at other sizes and
batches, and the training outputs our criterion consumes (the state-dict layout of every DETR manifest is in
tests/test_focoos_families.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from focoos.processing.postprocess import postprocess_detr  # noqa: E402
from tests import focoos_reference as ref  # noqa: E402

PROBE = "fai-detr-m-coco"
# Measured: 7e-7 (fp32 CPU, same kernels as the recording). 1e-4 leaves room for other CPUs/thread counts;
# far larger deviations would change which encoder tokens enter the top-300 and break the set match anyway.
OUTPUT_ATOL = 1e-4


def _focoos_preprocess(index: int, size: int, swap_rb: bool = False) -> tuple[torch.Tensor, tuple[int, int]]:
    """Focoos' detection preprocessing: PIL RGB -> float NCHW -> bilinear resize (align_corners=False).

    swap_rb: what Focoos' `infer(PIL.Image)` feeds the network: its image loader applies cv2's BGR->RGB
    conversion to the PIL array, which is already RGB, so red and blue arrive swapped. The recorded
    detections come from that call (all 50 scores reproduce to 1e-6 only this way); the recorded
    outputs and inputs come from the RGB batch.
    """
    image = np.array(Image.open(ref.probe_image(index)).convert("RGB"))
    if swap_rb:
        image = np.ascontiguousarray(image[..., ::-1])
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x, image.shape[:2]


def _match_queries(got: np.ndarray, want: np.ndarray) -> float:
    """Max deviation between the rows of got [Q, K] and want [Q, K], paired one to one (greedy nearest).

    Top-k orders near-tied encoder scores differently across runtimes and machines (adjacent queries swap),
    and the decoder is permutation-equivariant, so the set of queries is what must agree. Rows may repeat:
    border tokens (invalid anchors) share one masked feature, and Focoos does not keep them out of the top-k.
    """
    dist = np.abs(got[:, None] - want[None]).max(-1)  # [Q, Q]
    worst = 0.0
    for i in np.argsort(dist.min(1)):
        j = int(dist[i].argmin())
        worst = max(worst, float(dist[i, j]))
        dist[:, j] = np.inf  # each wanted row is used once
    return worst


@pytest.fixture(scope="module")
def probe_net():
    return ref.synthetic_network(PROBE)


@pytest.fixture(scope="module")
def probe_results(probe_net):
    results = []
    for index in range(2):
        x, hw = _focoos_preprocess(index, ref.model_info(PROBE).input_hw[0])
        with torch.no_grad():
            boxes, logits = probe_net(x)
        results.append((x, hw, boxes.numpy(), logits.numpy()))
    return results


def test_probe_parameter_count(probe_net) -> None:
    assert sum(p.numel() for p in probe_net.parameters()) == 16_191_952


@pytest.mark.parametrize("index", [0, 1])
def test_probe_preprocessing_matches_recorded_input(probe_results, index: int) -> None:
    x = probe_results[index][0][:, :, ::4, ::4].numpy()
    recorded = ref.probe_outputs(PROBE)[f"image{index}_input"]
    half_ulp = np.spacing(np.abs(recorded)).astype(np.float32) / 2  # recorded in float16
    assert x.shape == recorded.shape
    assert (np.abs(x - recorded.astype(np.float32)) <= half_ulp + 1e-6).all()


@pytest.mark.parametrize("index", [0, 1])
def test_probe_outputs_match_recorded(probe_results, index: int) -> None:
    _, _, boxes, logits = probe_results[index]
    recorded = ref.probe_outputs(PROBE)
    want_boxes, want_logits = recorded[f"image{index}_out0"], recorded[f"image{index}_out1"]
    assert boxes.shape == want_boxes.shape == (1, 300, 4)
    assert logits.shape == want_logits.shape == (1, 300, 80)
    got = np.concatenate([boxes, logits], -1)[0]
    want = np.concatenate([want_boxes, want_logits], -1)[0]
    assert _match_queries(got, want) < OUTPUT_ATOL


@pytest.mark.parametrize("index", [0, 1])
def test_probe_detections_match_focoos(probe_net, index: int) -> None:
    x, hw = _focoos_preprocess(index, ref.model_info(PROBE).input_hw[0], swap_rb=True)
    with torch.no_grad():
        boxes, logits = probe_net(x)
    (ours,) = postprocess_detr(boxes.numpy(), logits.numpy(), [hw], threshold=1e-4, top_k=300)
    want = ref.probe_detections(PROBE)[index]  # Focoos' 50 most confident
    assert (ours.boxes == np.round(ours.boxes)).all()  # whole pixels, as Focoos returns them
    free = np.ones(len(ours.scores), dtype=bool)
    for det in want:
        ok = (
            free
            & (ours.classes == det["cls_id"])
            & (np.abs(ours.scores - det["conf"]) <= 1e-3)
            & (np.abs(ours.boxes - np.array(det["bbox"])).max(-1) <= 1)
        )
        assert ok.any(), f"Focoos detection {det} has no match"
        free[np.flatnonzero(ok)[0]] = False
    # every detection of ours clearly above Focoos' 50th score is one of Focoos' 50
    floor = min(det["conf"] for det in want) + 1e-3
    assert not (free & (ours.scores > floor)).any()


def _export_onnx(net, tmp_path, size: int):
    from focoos.infer.export import export_network
    from focoos.ports import RuntimeType

    out = export_network(net, ref.model_info(PROBE), RuntimeType.ONNX_CPU, tmp_path / "export", image_size=size)
    return out / "model.onnx"


@pytest.mark.slow
def test_onnx_export_any_size_and_batch(probe_net, probe_results, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = _export_onnx(probe_net, tmp_path, 640)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "logits"]
    x0, x1 = probe_results[0][0], probe_results[1][0]
    dtype = session.get_inputs()[0].type  # the exported input: tensor(float) or tensor(uint8)
    small = torch.nn.functional.interpolate(torch.cat([x0, x1]), size=(320, 480), mode="bilinear")
    for images in (x0.round(), small.round()):  # whole pixel values, exact in either input dtype
        feed = images.numpy().astype(np.uint8 if dtype == "tensor(uint8)" else np.float32)
        boxes, logits = session.run(None, {"images": feed})
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eager_boxes, eager_logits = probe_net(images)
        assert boxes.shape == tuple(eager_boxes.shape) and logits.shape == tuple(eager_logits.shape)
        for b in range(images.shape[0]):
            got = np.concatenate([boxes[b], logits[b]], -1)
            want = np.concatenate([eager_boxes[b].numpy(), eager_logits[b].numpy()], -1)
            assert _match_queries(got, want) < 1e-4


def test_training_outputs_feed_the_detr_criterion() -> None:
    pytest.importorskip("scipy")
    from focoos.training.losses.detr import DetrCriterion

    torch.manual_seed(0)
    net = ref.build_network(PROBE).train()
    images = torch.randint(0, 256, (2, 3, 128, 160), dtype=torch.uint8)
    out = net(images)
    layers = [out, *out["aux_outputs"], out["enc_outputs"]]
    assert len(out["aux_outputs"]) == 2  # 3 decoder layers
    for layer in layers:
        assert layer["pred_logits"].shape == (2, 300, 80) and layer["pred_boxes"].shape == (2, 300, 4)
    targets = [
        {"labels": torch.tensor([3, 7]), "boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0], [0.0, 0.0, 160.0, 128.0]])},
        {"labels": torch.tensor([1]), "boxes": torch.tensor([[40.0, 30.0, 100.0, 120.0]])},
    ]
    criterion = DetrCriterion(80)
    losses = criterion(out, criterion.normalise_targets(targets, (128, 160)), num_boxes=3)
    assert {"loss_vfl", "loss_bbox", "loss_giou", "loss_vfl_aux0", "loss_giou_enc"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert net.pixel_decoder.backbone.features[0].conv.weight.grad.abs().sum() > 0
    assert net.head.predictor.enc_score_classifier.weight.grad.abs().sum() > 0
