"""FAI-DETR network: shapes, ONNX export (dynamic batch and size), TorchScript tracing, training outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from focoos.models.fai_detr.modelling import FaiDetr, build_model  # noqa: E402

CONFIG = {
    "backbone": "stdc1",
    "hidden_dim": 64,
    "num_queries": 50,
    "num_decoder_layers": 2,
    "dim_feedforward": 128,
    "num_heads": 4,
}
NUM_CLASSES = 5


def _images(batch: int, height: int = 160, width: int = 160, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=gen)


@pytest.fixture(scope="module")
def model() -> FaiDetr:
    """Small eval model; all weights jittered so zero-initialised heads (box deltas, attention) matter."""
    torch.manual_seed(0)
    net = build_model(CONFIG, NUM_CLASSES)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def _eager(model: FaiDetr, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        boxes, scores = model(x)
    return boxes.numpy(), scores.numpy()


def _assert_same_detections(
    boxes: np.ndarray, scores: np.ndarray, ref: tuple[np.ndarray, np.ndarray]
) -> None:
    """Equal within 1e-4 up to the order of the queries: top-k may order exactly tied scores differently
    in another runtime, and the decoder is permutation-equivariant, so only the set of queries matters."""
    got = np.concatenate([boxes, scores], axis=-1)  # [B, Q, 4 + C]
    want = np.concatenate(ref, axis=-1)
    assert got.shape == want.shape
    for g, w in zip(got, want, strict=True):
        dist = np.abs(g[:, None] - w[None]).max(-1)  # [Q, Q]
        match = dist.argmin(1)
        assert len(set(match.tolist())) == len(match), "queries do not match one to one"
        assert dist.min(1).max() < 1e-4, f"max deviation {dist.min(1).max():.2e}"


def test_eval_shapes_and_dtypes(model: FaiDetr) -> None:
    x = _images(2)
    for images in (x, x.float()):
        with torch.no_grad():
            boxes, scores = model(images)
        assert boxes.shape == (2, 50, 4) and scores.shape == (2, 50, NUM_CLASSES)
        assert boxes.dtype == torch.float32 and scores.dtype == torch.float32
        assert torch.isfinite(boxes).all() and torch.isfinite(scores).all()
        assert scores.min() >= 0 and scores.max() <= 1
        assert (boxes[..., 2:] >= boxes[..., :2]).all()  # xyxy
    assert np.allclose(_eager(model, x)[0], _eager(model, x.float())[0])  # uint8 == float input
    assert model.output_names == ("boxes", "logits")


@pytest.mark.slow
def test_onnx_dynamic_batch_and_size(model: FaiDetr, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "fai_detr.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (_images(1),),
            str(path),
            dynamo=False,
            opset_version=18,
            input_names=["images"],
            output_names=["boxes", "logits"],
            dynamic_axes={
                "images": {0: "batch", 2: "height", 3: "width"},
                "boxes": {0: "batch"},
                "logits": {0: "batch"},
            },
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "logits"]
    for batch, height, width in [(1, 160, 160), (3, 160, 160), (2, 192, 224)]:
        x = _images(batch, height, width)  # batch 3 has an exact top-k score tie
        boxes, scores = session.run(None, {"images": x.numpy()})
        assert boxes.shape == (batch, 50, 4) and scores.shape == (batch, 50, NUM_CLASSES)
        _assert_same_detections(boxes, scores, _eager(model, x))


@pytest.mark.slow
def test_torchscript_trace_is_shape_generic(model: FaiDetr) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, _images(1))
        for batch, height, width in [(3, 160, 160), (2, 192, 224), (1, 200, 168)]:
            x = _images(batch, height, width, seed=7)
            boxes, scores = traced(x)
            _assert_same_detections(boxes.numpy(), scores.numpy(), _eager(model, x))


def test_training_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    net = build_model(CONFIG, NUM_CLASSES).train()
    out = net(_images(2).float())
    assert set(out) == {"pred_logits", "pred_boxes", "aux_outputs", "enc_outputs"}
    heads = [out, *out["aux_outputs"], out["enc_outputs"]]
    assert len(out["aux_outputs"]) == CONFIG["num_decoder_layers"] - 1
    for head in heads:
        assert head["pred_logits"].shape == (2, 50, NUM_CLASSES)
        assert head["pred_boxes"].shape == (2, 50, 4)
        assert ((head["pred_boxes"] >= 0) & (head["pred_boxes"] <= 1)).all()
    loss = sum(h["pred_logits"].sum() + h["pred_boxes"].sum() for h in heads)
    loss.backward()
    stem_grad = net.backbone.stem[0][0].weight.grad
    assert stem_grad is not None and stem_grad.abs().sum() > 0
    assert net.decoder.enc_score_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("backbone", ["stdc2", "resnet18d"])
def test_other_backbones(backbone: str) -> None:
    torch.manual_seed(0)
    net = build_model({**CONFIG, "backbone": backbone}, NUM_CLASSES).eval()
    with torch.no_grad():
        boxes, scores = net(_images(1, 128, 160))
    assert boxes.shape == (1, 50, 4) and scores.shape == (1, 50, NUM_CLASSES)
