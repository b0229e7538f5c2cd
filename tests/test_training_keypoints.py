"""Keypoint training: the digit-keypoint dataset, COCO OKS evaluation, RTMO's losses and a tiny real RTMO run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from focoos.training.losses.rtmo import RTMOCriterion, SimOTA, pairwise_oks

from focoos import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, Task, TrainerArgs
from focoos.data import AutoDataset, DatasetAugmentations, DatasetError, coco_keypoint_metrics, keypoint_sigmas
from focoos.data.digit_keypoints import KEYPOINT_NAMES, SKELETON, build
from focoos.data.preview import draw_item
from focoos.models.rtmo.modelling import DCC, DEFAULTS
from tests import focoos_reference as ref
from tests.conftest import quiet_get

RESOLUTION = 128


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> AutoDataset:
    """One training canvas (a tiny run overfits it) and three validation canvases of held-out digits."""
    out = build(tmp_path_factory.mktemp("datasets") / "digit_keypoints", train_images=1, val_images=3,
                size=RESOLUTION, scale=(1.5, 2.5))
    return AutoDataset(out.name, Task.KEYPOINT, DatasetLayout.ROBOFLOW_COCO, out.parent)


@pytest.fixture(scope="module")
def val_split(dataset):
    return dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.VAL)


def _predictions(ground_truth: dict, shift: np.ndarray | None = None) -> list[dict]:
    preds = []
    for ann in ground_truth["annotations"]:
        points = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if shift is not None:
            points[:, :2] += shift[len(preds)]
        preds.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 0.9,
                      "keypoints": points.reshape(-1).tolist()})
    return preds


def test_keypoint_split_loads_with_keypoints_that_follow_the_augmentation(dataset, val_split):
    assert val_split.keypoint_names == KEYPOINT_NAMES and val_split.skeleton == SKELETON
    assert val_split.classes == ["digit"] and len(val_split) == 3
    augs = DatasetAugmentations(resolution=RESOLUTION, scale_ratio=0.5, crop=True, rotation=0.1, zoom_out=0.5,
                                color_augmentation=1.0)
    train = dataset.get_split(augs, DatasetSplitType.TRAIN)
    torch.manual_seed(3)
    for _ in range(6):
        item = train[0]
        boxes, points = item["boxes"], item["keypoints"]
        assert points.shape == (len(boxes), 4, 3) and item["image"].shape == (3, RESOLUTION, RESOLUTION)
        visible = points[..., 2] > 0
        slack = 3.0  # rotation makes the box the rotated box's hull, resampling moves ink by a pixel
        inside = ((points[..., 0] >= boxes[:, None, 0] - slack) & (points[..., 0] <= boxes[:, None, 2] + slack)
                  & (points[..., 1] >= boxes[:, None, 1] - slack) & (points[..., 1] <= boxes[:, None, 3] + slack))
        assert bool((inside | ~visible).all())
        on_image = (points[..., :2] >= 0).all(-1) & (points[..., :2] <= RESOLUTION).all(-1)
        assert bool((on_image | ~visible).all())
    item = val_split.item(0)
    drawn = draw_item(item, val_split.classes, Task.KEYPOINT, val_split.skeleton)
    boxes_only = draw_item({k: v for k, v in item.items() if k != "keypoints"}, val_split.classes, Task.KEYPOINT)
    assert drawn.shape == boxes_only.shape and not np.array_equal(drawn, boxes_only)  # the preview draws keypoints
    with pytest.raises(DatasetError, match="flips"):
        dataset.get_split(DatasetAugmentations(resolution=RESOLUTION, horizontal_flip=0.5), DatasetSplitType.TRAIN)


def test_reader_rejects_keypoints_that_do_not_match_the_categories(dataset, tmp_path):
    source = dataset.split_dir(DatasetSplitType.VAL) / "_annotations.coco.json"
    coco = json.loads(source.read_text())
    coco["annotations"][0]["keypoints"] = coco["annotations"][0]["keypoints"][:-3]
    broken = tmp_path / "broken" / "valid"
    broken.mkdir(parents=True)
    for image in coco["images"]:
        (broken / image["file_name"]).symlink_to(source.parent / image["file_name"])
    (broken / "_annotations.coco.json").write_text(json.dumps(coco))
    data = AutoDataset("broken", Task.KEYPOINT, DatasetLayout.ROBOFLOW_COCO, tmp_path)
    with pytest.raises(DatasetError, match="4 \\(x, y, v\\) triplets"):
        data.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.VAL)


def test_oks_ap_is_100_for_the_ground_truth_and_lower_when_perturbed(val_split):
    ground_truth = val_split.coco_ground_truth()
    assert ground_truth["categories"][0]["keypoints"] == KEYPOINT_NAMES
    assert all(ann["num_keypoints"] == 4 for ann in ground_truth["annotations"])
    perfect = coco_keypoint_metrics(ground_truth, _predictions(ground_truth))
    assert perfect["keypoints/AP"] == pytest.approx(100.0) and perfect["keypoints/AP50"] == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    shift = rng.normal(0.0, 3.0, (len(ground_truth["annotations"]), 4, 2))
    perturbed = coco_keypoint_metrics(ground_truth, _predictions(ground_truth, shift))
    assert 0.0 < perturbed["keypoints/AP"] < 90.0
    further = coco_keypoint_metrics(ground_truth, _predictions(ground_truth, 3 * shift))
    assert further["keypoints/AP"] < perturbed["keypoints/AP"]
    assert coco_keypoint_metrics(ground_truth, [])["keypoints/AP"] == 0.0
    no_objects = {**ground_truth, "annotations": []}  # a split without people still takes predictions
    assert set(coco_keypoint_metrics(no_objects, _predictions(ground_truth))) == set(perfect)
    assert len(keypoint_sigmas(17)) == 17 and set(keypoint_sigmas(4)) == {0.05}


# -- losses on synthetic tensors: one 64x64 image, priors of strides 16 and 32, one object.
SIZE, K = 64, 4
GT_BOX = torch.tensor([[12.0, 10.0, 44.0, 50.0]])
GT_POINTS = torch.tensor([[[28.0, 10.5, 2], [43.5, 30.0, 2], [30.0, 49.5, 2], [12.5, 33.0, 1]]])


def _priors() -> torch.Tensor:
    rows = []
    for stride in (16, 32):
        cells = torch.arange(SIZE // stride, dtype=torch.float32) * stride + stride / 2
        gy, gx = torch.meshgrid(cells, cells, indexing="ij")
        rows.append(torch.stack([gx, gy, torch.full_like(gx, stride), torch.full_like(gx, stride)], -1).reshape(-1, 4))
    return torch.cat(rows)


@pytest.fixture(scope="module")
def dcc() -> DCC:
    torch.manual_seed(0)
    cfg = {**DEFAULTS, "num_keypoints": K, "pose_vec_channels": 32, "feat_channels_dcc": 16, "spe_channels": 16,
           "gau_s": 16, "num_bins": [24, 32]}
    return DCC(cfg).train()


def _outputs(dcc: DCC, box_error: float, point_error: float, score: float | torch.Tensor) -> dict:
    """Every prior predicts the object's box and keypoints off by the given pixels, with logits `score` [P]."""
    priors = _priors()
    count = len(priors)
    score = torch.as_tensor(score, dtype=torch.float32).expand(count)
    boxes = (GT_BOX + box_error).expand(count, 4)
    points = (GT_POINTS[0, :, :2] + point_error).expand(count, K, 2)
    pose = torch.randn(1, count, 32, generator=torch.Generator().manual_seed(1))
    return {"cls_scores": score.reshape(1, count, 1).clone().requires_grad_(),
            "bbox_decoded": boxes[None].clone().requires_grad_(), "kpt_decoded": points[None].clone().requires_grad_(),
            "kpt_vis": torch.full((1, count, K), 2.0, requires_grad=True), "pose_vecs": pose.requires_grad_(),
            "priors": priors, "dcc": dcc}


def _target() -> list[dict]:
    return [{"boxes": GT_BOX, "labels": torch.tensor([0]), "keypoints": GT_POINTS}]


def test_oks_is_one_at_the_target_and_falls_with_distance():
    weights, areas, sigmas = torch.ones(1, K), torch.tensor([1000.0]), torch.full((K,), 0.05)
    target = GT_POINTS[..., :2]
    values = [float(pairwise_oks(target + d, target, weights, areas, sigmas)) for d in (0.0, 2.0, 6.0)]
    assert values[0] == pytest.approx(1.0) and values[0] > values[1] > values[2] > 0.0
    assert float(pairwise_oks(target + 50, target, torch.zeros(1, K), areas, sigmas)) == 0.0  # nothing visible


def test_simota_assigns_priors_inside_the_object():
    priors = _priors()
    pred = {"boxes": GT_BOX.expand(len(priors), 4), "scores": torch.full((len(priors), 1), 0.5),
            "keypoints": GT_POINTS[0, :, :2].expand(len(priors), K, 2)}
    gt = {"boxes": GT_BOX, "labels": torch.tensor([0]), "keypoints": GT_POINTS[..., :2],
          "visible": (GT_POINTS[..., 2] > 0).float(), "areas": torch.tensor([32.0 * 40.0])}
    mask, matched, oks = SimOTA(torch.full((K,), 0.05), keypoint_centres=True)(priors, pred, gt)
    # Perfect predictions: OKS 1 everywhere, so k = the 10 candidates' summed OKS = 10; the priors inside the box
    # (and its centre region) cost least and all come first, the rest are the cheapest of the others.
    assert int(mask.sum()) == 10 and matched.tolist() == [0] * 10 and torch.allclose(oks, torch.ones_like(oks))
    in_box = ((priors[:, :2] > GT_BOX[0, :2]) & (priors[:, :2] < GT_BOX[0, 2:])).all(-1)
    assert int(in_box.sum()) == 6 and bool(mask[in_box].all())
    assigner = SimOTA(torch.full((K,), 0.05), keypoint_centres=True)
    far = assigner(priors, {**pred, "keypoints": pred["keypoints"] + 30}, gt)
    assert 1 <= int(far[0].sum()) < 10 and bool(in_box[far[0]].all())  # poor OKS: a small k, inside only


def test_rtmo_losses_are_finite_lower_for_a_better_prediction_and_train_every_output(dcc):
    criterion = RTMOCriterion(num_classes=1, num_keypoints=K)
    positives = criterion._targets(_outputs(dcc, 0.0, 0.0, 0.0), _target())["mask"]
    confident = torch.where(positives, 4.0, -4.0)  # high scores where the object is, low elsewhere
    good = criterion(_outputs(dcc, 0.0, 0.0, confident), _target())
    bad = criterion(_outputs(dcc, 6.0, 8.0, -confident), _target())
    assert set(good) == {"loss_bbox", "loss_vis", "loss_mle", "loss_oks", "loss_cls"}
    assert all(math.isfinite(v.item()) for v in [*good.values(), *bad.values()])
    assert good["loss_bbox"].item() == pytest.approx(0.0, abs=1e-4) and good["loss_oks"].item() < 1e-3
    for name in ("loss_bbox", "loss_oks", "loss_cls"):
        assert good[name].item() < bad[name].item(), name
    outputs = _outputs(dcc, 3.0, 4.0, 0.0)
    sum(criterion(outputs, _target()).values()).backward()
    for key in ("cls_scores", "bbox_decoded", "kpt_decoded", "kpt_vis", "pose_vecs"):
        assert outputs[key].grad is not None and outputs[key].grad.abs().sum() > 0, key
    assert dcc.sigma_fc[0].weight.grad is not None  # the MLE term trains the DCC's sigma


def test_rtmo_losses_without_objects_train_only_the_scores(dcc):
    outputs = _outputs(dcc, 0.0, 0.0, 1.0)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
              "keypoints": torch.zeros(0, K, 3)}]
    losses = RTMOCriterion(num_classes=1, num_keypoints=K)(outputs, empty)
    assert losses["loss_cls"].item() > 0 and all(losses[n].item() == 0.0 for n in losses if n != "loss_cls")
    sum(losses.values()).backward()
    assert outputs["cls_scores"].grad.abs().sum() > 0  # pushed towards "no object" everywhere


# -- a tiny real run: rtmo-s (COCO, 17 keypoints) adapted to the 4 digit keypoints, 20 steps on one canvas.
def test_tiny_rtmo_run_lowers_its_loss_and_reports_keypoint_ap(dataset, val_split, tmp_path):
    config = ref.manifest("rtmo-s-coco")["model_info"]["config"]
    info = ModelInfo(name="tiny-rtmo", model_family=ModelFamily.RTMO, task=Task.KEYPOINT, classes=["digit"],
                     im_size=RESOLUTION, config=dict(config))
    model = quiet_get("tiny-rtmo", model_info=info, device="cpu")
    train = dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.TRAIN)
    args = TrainerArgs(run_name="run", output_dir=str(tmp_path), max_iters=20, batch_size=1, eval_period=20,
                       log_period=1, checkpointer_period=20, learning_rate=2e-4, clip_gradients=0.0, seed=0,
                       workers=0, ema_enabled=False, device="cpu")
    result = model.train(args, train, val_split)
    run = tmp_path / "run"
    assert {"model_final.pth", "last_checkpoint", "metrics.json", "model_info.json"} <= {p.name for p in run.iterdir()}
    records = [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]
    losses = [r["total_loss"] for r in records if "total_loss" in r]
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)
    # measured: 38 -> 31 with one thread, 37.5 -> 33.8 with two (the CI machine's); steady loss swings by ~3 %
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5]), losses
    assert "keypoints/AP" in result.val_metrics and 0.0 <= result.val_metrics["keypoints/AP"] <= 100.0
    assert result.config["num_keypoints"] == 4 and result.config["keypoints"] == KEYPOINT_NAMES
    metrics = model.eval(args.model_copy(update={"run_name": "eval"}), val_split)
    assert metrics["keypoints/AP"] == pytest.approx(result.val_metrics["keypoints/AP"])
