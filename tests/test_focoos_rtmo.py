"""RTMO against Focoos 0.25: the probe's recorded outputs and people (boxes, scores, 17 keypoints), ONNX export
at other sizes and batches, the training outputs a loss consumes, and the keypoint postprocessing, annotation
and supervision conversion (the state-dict layout of every RTMO manifest is in tests/test_focoos_families.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from focoos.ports import FocoosDet, FocoosDetections  # noqa: E402
from focoos.processing import annotate_image  # noqa: E402
from focoos.processing.postprocess import nms, postprocess_keypoints  # noqa: E402
from tests import family_checks as checks  # noqa: E402
from tests import focoos_reference as ref  # noqa: E402

PROBE = "rtmo-s-coco"
# Measured against the recording (fp32 CPU, 1 thread): scores 1.2e-6, boxes 9e-5 px, keypoints 2.4e-4 px,
# keypoint scores 1e-6. The bounds leave room for other CPUs and thread counts.
SCORE_ATOL, PIXEL_ATOL = 1e-4, 1e-2


def _focoos_preprocess(index: int, swap_rb: bool = False) -> tuple[torch.Tensor, tuple[int, int]]:
    """Focoos' preprocessing: PIL RGB -> float NCHW -> bilinear resize to im_size. swap_rb: what Focoos'
    `infer(PIL.Image)` feeds the network (see tests/test_focoos_fai_detr.py); the recorded people come from
    that call, the recorded raw outputs from the RGB batch."""
    image = np.array(Image.open(ref.probe_image(index)).convert("RGB"))
    if swap_rb:
        image = np.ascontiguousarray(image[..., ::-1])
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    size = ref.model_info(PROBE).input_hw
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False), image.shape[:2]


def _match_rows(got: np.ndarray, want: np.ndarray, window: int = 4) -> np.ndarray:
    """For each wanted row, the nearest unused row of ours within `window` places: near-tied scores swap
    neighbours between runs (the synthetic weights make many near ties), everything else keeps its place."""
    used = np.zeros(len(got), dtype=bool)
    pairs = np.empty(len(want), dtype=np.int64)
    for i in range(len(want)):
        candidates = [j for j in range(max(0, i - window), min(len(got), i + window + 1)) if not used[j]]
        j = candidates[int(np.argmin([np.abs(got[j] - want[i]).max() for j in candidates]))]
        used[j], pairs[i] = True, j
    return pairs


@pytest.fixture(scope="module")
def probe_net():
    return ref.synthetic_network(PROBE)


@pytest.fixture(scope="module")
def probe_results(probe_net):
    results = []
    for index in range(2):
        x, hw = _focoos_preprocess(index)
        with torch.no_grad():
            results.append((x, hw, [o.numpy() for o in probe_net(x)]))
    return results


def test_criterion_keeps_coco_keypoint_sigmas(probe_net) -> None:
    sigmas = probe_net.state_dict()["head.criterion.loss_oks.sigmas"]
    assert torch.allclose(sigmas[[0, 5, 15]], torch.tensor([0.026, 0.079, 0.089]))  # COCO's nose, shoulder, ankle


@pytest.mark.parametrize("index", [0, 1])
def test_probe_preprocessing_matches_recorded_input(probe_results, index: int) -> None:
    x = probe_results[index][0][:, :, ::4, ::4].numpy()
    recorded = ref.probe_outputs(PROBE)[f"image{index}_input"]
    half_ulp = np.spacing(np.abs(recorded)).astype(np.float32) / 2  # recorded in float16
    assert x.shape == recorded.shape
    assert (np.abs(x - recorded.astype(np.float32)) <= half_ulp + 1e-6).all()


@pytest.mark.parametrize("index", [0, 1])
def test_probe_outputs_match_recorded(probe_results, index: int) -> None:
    """Focoos' seven outputs (scores, labels, boxes, box scores, keypoints, keypoint scores, visibility) are
    what its model returns after its score filter and NMS: our graph's candidates through our numpy NMS."""
    _, _, (boxes, scores, keypoints) = probe_results[index]
    cfg = ref.model_info(PROBE).config
    size = np.array(ref.model_info(PROBE).input_hw[::-1], dtype=np.float32)  # (w, h)
    best = scores[0].max(-1)
    order = np.argsort(-best, kind="stable")
    order = order[best[order] > cfg["score_thr"]]
    pixels = boxes[0] * np.tile(size, 2)
    kept = order[nms(pixels[order], cfg["nms_thr"])]
    ours = [best[kept], scores[0].argmax(-1)[kept], pixels[kept], best[kept], keypoints[0, kept, :, :2] * size,
            keypoints[0, kept, :, 2], keypoints[0, kept, :, 2]]
    recorded = ref.probe_outputs(PROBE)
    want = [recorded[f"image{index}_out{j}"][0] for j in range(7)]
    assert [o.shape for o in ours] == [w.shape for w in want]
    flat = [np.concatenate([o.reshape(len(kept), -1) for o in out], -1) for out in (ours, want)]
    pairs = _match_rows(*flat)
    assert (ours[1][pairs] == want[1]).all()
    for j, atol in enumerate([SCORE_ATOL, 0, PIXEL_ATOL, SCORE_ATOL, PIXEL_ATOL, SCORE_ATOL, SCORE_ATOL]):
        assert np.abs(ours[j][pairs] - want[j]).max() <= atol, j


@pytest.mark.parametrize("index", [0, 1])
def test_probe_people_match_focoos(probe_net, index: int) -> None:
    x, hw = _focoos_preprocess(index, swap_rb=True)
    with torch.no_grad():
        outputs = [o.numpy() for o in probe_net(x)]
    cfg = ref.model_info(PROBE).config
    (ours,) = postprocess_keypoints(*outputs, [hw], threshold=1e-4, top_k=1000, score_thr=cfg["score_thr"],
                                    nms_thr=cfg["nms_thr"])
    want = ref.probe_detections(PROBE)[index]  # Focoos' 50 most confident
    assert ours.keypoints.shape == (len(ours.scores), 17, 3)
    assert (ours.boxes == np.round(ours.boxes)).all() and (ours.keypoints[..., :2] % 1 == 0).all()  # whole pixels
    free = np.ones(len(ours.scores), dtype=bool)
    for det in want:
        points = np.array(det["keypoints"])
        ok = (
            free
            & (ours.classes == det["cls_id"])
            & (np.abs(ours.scores - det["conf"]) <= 1e-3)
            & (np.abs(ours.boxes - np.array(det["bbox"])).max(-1) <= 1)
            & (np.abs(ours.keypoints[..., :2] - points[:, :2]).max((1, 2)) <= 1)
            & (np.abs(ours.keypoints[..., 2] - points[:, 2]).max(-1) <= 1e-3)
        )
        assert ok.any(), f"Focoos person {det['bbox']} {det['conf']} has no match"
        free[np.flatnonzero(ok)[0]] = False
    floor = min(det["conf"] for det in want) + 1e-3
    assert not (free & (ours.scores > floor)).any()  # ours above Focoos' 50th are among Focoos' 50


def test_onnx_export_any_size_and_batch(tmp_path) -> None:
    """One graph at other sizes and batches: the candidates are min(nms_topk, priors) of each input, both when
    the export size had more priors than nms_topk and when another input has fewer."""
    ort = pytest.importorskip("onnxruntime")
    from focoos.infer.export import export_network
    from focoos.models.rtmo.modelling import build_model
    from focoos.ports import RuntimeType

    info = ref.model_info(PROBE)
    net = build_model({**info.config, "nms_topk": 200}, info.num_classes)  # 320 priors at 256 x 256
    net.load_state_dict(ref.synthetic_state_dict(PROBE, net), strict=True)
    out = export_network(net.eval(), info, RuntimeType.ONNX_CPU, tmp_path / "export", image_size=256)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "keypoints"]
    rng = np.random.default_rng(0)
    for batch, hw, rows in [(1, (256, 256), 200), (2, (192, 160), 12 * 10 + 6 * 5)]:
        images = rng.integers(0, 256, (batch, 3, *hw)).astype(np.float32)
        got = session.run(None, {"images": images})
        want = [o.numpy() for o in checks.eager(net, images)]
        assert got[2].shape == want[2].shape == (batch, rows, 17, 3)
        for b in range(batch):
            flat = [np.concatenate([o[b].reshape(rows, -1) for o in out], -1) for out in (got, want)]
            pairs = _match_rows(*flat)
            assert np.abs(flat[0][pairs] - flat[1]).max() < 1e-4


def test_training_outputs_feed_a_loss() -> None:
    """The dense per-prior outputs of the contract, and the DCC on positives with gradients to the backbone."""
    torch.manual_seed(0)
    net = ref.build_network(PROBE).train()
    out = net(torch.randint(0, 256, (2, 3, 128, 160), dtype=torch.uint8))
    n = 8 * 10 + 4 * 5  # priors at strides 16 and 32
    shapes = {"cls_scores": (2, n, 1), "bbox_preds": (2, n, 4), "bbox_decoded": (2, n, 4), "kpt_offsets": (2, n, 34),
              "kpt_decoded": (2, n, 17, 2), "kpt_vis": (2, n, 17), "pose_vecs": (2, n, 256), "priors": (n, 4)}
    assert {k: tuple(out[k].shape) for k in shapes} == shapes
    assert out["priors"][0].tolist() == [8.0, 8.0, 16.0, 16.0] and out["priors"][-1].tolist() == [144, 112, 32, 32]
    from focoos.models.rtmo.modelling import bbox_xyxy_to_cs

    pos = torch.tensor([3, 40, 95])
    boxes = out["bbox_decoded"][0, pos]
    cs = torch.cat(bbox_xyxy_to_cs(boxes), -1)
    keypoints, (x_hms, y_hms), sigmas = out["dcc"].forward_train(out["pose_vecs"][0, pos], cs, out["priors"][pos, :2])
    assert keypoints.shape == (3, 17, 2) and x_hms.shape == (3, 17, 192) and y_hms.shape == (3, 17, 256)
    assert torch.allclose(x_hms.sum(-1), torch.ones(3, 17), atol=1e-5) and sigmas.shape == (3, 17)
    hm_x, hm_y = out["dcc"].generate_target_heatmap(keypoints.detach(), cs, sigmas, torch.full((3,), 900.0))
    assert hm_x.shape == x_hms.shape and hm_y.shape == y_hms.shape
    loss = keypoints.sum() + out["cls_scores"].sum() + sigmas.sum() + (x_hms * hm_x.detach()).sum()
    loss.backward()
    assert net.backbone.stem.conv.conv.weight.grad.abs().sum() > 0
    assert net.head.dcc.pose_to_kpts[0].weight.grad.abs().sum() > 0


def test_keypoint_postprocessing_follows_focoos_thresholds() -> None:
    """Candidates above score_thr, NMS across classes, then the call's threshold (0: score_thr), top_k."""
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9], [0, 0, 0.2, 0.2]]])
    scores = np.array([[[0.9, 0.1], [0.2, 0.8], [0.05, 0.5], [0.05, 0.04]]], dtype=np.float32)
    keypoints = np.full((1, 4, 2, 3), 0.5, dtype=np.float32)
    keypoints[0, :, 1] = [1.2, -0.1, 0.7]  # outside the image: clipped
    kwargs = {"score_thr": 0.3, "nms_thr": 0.65}
    (res,) = postprocess_keypoints(boxes, scores, keypoints, [(100, 200)], threshold=0.0, **kwargs)
    assert res.scores.tolist() == pytest.approx([0.9, 0.5]) and res.classes.tolist() == [0, 1]  # row 1 suppressed
    assert res.boxes.tolist() == [[20, 10, 100, 50], [120, 60, 180, 90]]
    assert res.keypoints[0].tolist() == [[100, 50, 0.5], [200, 0, 0.699999988079071]]
    (res,) = postprocess_keypoints(boxes, scores, keypoints, [(100, 200)], threshold=0.6, **kwargs)
    assert res.scores.tolist() == pytest.approx([0.9])
    (res,) = postprocess_keypoints(boxes, scores, keypoints, [(100, 200)], threshold=0.0, top_k=1, **kwargs)
    assert len(res.scores) == 1 and res.keypoints.shape == (1, 2, 3)


def test_people_annotate_and_convert_to_supervision(scene) -> None:
    sv = pytest.importorskip("supervision")
    from focoos.results import to_focoos_detections

    (res,) = postprocess_keypoints(
        np.array([[[0.1, 0.1, 0.6, 0.9]]]), np.array([[[0.9]]], dtype=np.float32),
        np.array([[[[0.2, 0.2, 0.9], [0.5, 0.8, 0.8], [0.5, 0.2, 0.1]]]], dtype=np.float32), [scene.shape[:2]],
        threshold=0.5,
    )  # fmt: skip
    dets = to_focoos_detections(res, ["person"])
    assert dets.detections[0].keypoints == [[64.0, 48.0, pytest.approx(0.9)], [160.0, 192.0, pytest.approx(0.8)],
                                            [160.0, 48.0, pytest.approx(0.1)]]
    assert dets.keypoints.shape == (1, 3, 3)
    drawn = annotate_image(scene, res.boxes, res.scores, res.classes, ["person"], keypoints=res.keypoints,
                           skeleton=[[1, 2], [2, 3]])
    plain = annotate_image(scene, res.boxes, res.scores, res.classes, ["person"])
    assert (drawn[120, 112] != plain[120, 112]).any()  # on the edge 1-2 (both keypoints over 0.5)
    assert (drawn[48, 160] == plain[48, 160]).all()  # keypoint 3 scores 0.1: not drawn
    key_points = dets.to_supervision_keypoints()
    assert isinstance(key_points, sv.KeyPoints) and key_points.xy.shape == (1, 3, 2)
    assert key_points.xy[0, 2].tolist() == [0, 0] and key_points.class_id.tolist() == [0]  # below 0.5: Focoos' (0, 0)
    empty = FocoosDetections(detections=[FocoosDet(bbox=[0, 0, 1, 1], conf=0.5, cls_id=0)])
    assert empty.keypoints.shape == (0, 0, 3) and len(empty.to_supervision_keypoints()) == 0
