"""Detection, segmentation, keypoint and classification metrics, in percent like Focoos and detectron2 report them.

Plain functions so the trainer, the CLI and tests can all score predictions the same way.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from focoos.data.errors import DatasetError

# Order of COCOeval.stats: AP, AP50, AP75, APs, APm, APl (then the AR values).
BBOX_METRICS = ("bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APs", "bbox/APm", "bbox/APl")
SEGM_METRICS = ("segm/AP", "segm/AP50", "segm/AP75", "segm/APs", "segm/APm", "segm/APl")
SEMSEG_METRICS = ("sem_seg/mIoU", "sem_seg/fwIoU", "sem_seg/mACC", "sem_seg/pACC")
# COCOeval's keypoint stats start AP, AP50, AP75, APm, APl (no small range: small people carry no keypoints).
# Focoos names these five "AP, AP50, AP75, APs, APm" and the AR after them "APl"; the names here are COCO's.
KEYPOINT_METRICS = ("keypoints/AP", "keypoints/AP50", "keypoints/AP75", "keypoints/APm", "keypoints/APl")
# OKS per-keypoint falloff of COCO's 17 person keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles); any other keypoint set gets DEFAULT_KEYPOINT_SIGMA for each point, as Focoos does.
COCO_KEYPOINT_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089,
    0.089,
)
DEFAULT_KEYPOINT_SIGMA = 0.05
# COCOeval's default area ranges (inclusive), in square pixels, by metric name without its "bbox/" or "segm/".
AREA_RANGES = {
    "all": (0.0, 1e10),
    "APs": (0.0, 32.0**2),
    "APm": (32.0**2, 96.0**2),
    "APl": (96.0**2, 1e10),
}


def coco_detection_metrics(ground_truth: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, float]:
    """COCO box AP of predictions (COCO results: image_id, category_id, bbox xywh, score) against ground truth.

    `ground_truth` is a COCO dict such as `MapDataset.coco_ground_truth()`. Empty predictions score
    0.0. A value COCOeval cannot define (no ground-truth box in that size range, or no ground truth
    at all) is NaN, as detectron2 reports it, rather than a misleading 0.
    """
    results = [
        {
            "image_id": p["image_id"],
            "category_id": int(p["category_id"]),
            "bbox": [float(v) for v in p["bbox"]],
            "score": float(p["score"]),
        }
        for p in predictions
    ]
    return _coco_metrics(ground_truth, results, "bbox", BBOX_METRICS)


def coco_instance_metrics(ground_truth: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, float]:
    """COCO mask AP of predictions (image_id, category_id, score, "segmentation" RLE) against ground truth.

    `ground_truth` is `MapDataset.coco_ground_truth()` of an instseg dataset. RLE counts may be str
    or bytes; each RLE must have its image's size. Empty predictions and undefined values as in
    coco_detection_metrics.
    """
    sizes = {image["id"]: [image.get("height"), image.get("width")] for image in ground_truth.get("images", [])}
    results = []
    for p in predictions:
        rle = p.get("segmentation")
        if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
            raise DatasetError(f"an instance prediction needs a 'segmentation' RLE dict (size, counts), got {rle!r}")
        if p["image_id"] in sizes and list(rle["size"]) != sizes[p["image_id"]]:
            raise DatasetError(
                f"a prediction mask for image {p['image_id']} is {list(rle['size'])} (HxW), the image is "
                f"{sizes[p['image_id']]}"
            )
        results.append(
            {
                "image_id": p["image_id"],
                "category_id": int(p["category_id"]),
                # No "bbox" key: pycocotools' loadRes would then replace the mask by the box.
                "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]},
                "score": float(p["score"]),
            }
        )
    return _coco_metrics(ground_truth, results, "segm", SEGM_METRICS)


def keypoint_sigmas(num_keypoints: int) -> np.ndarray:
    """The OKS sigmas of a K-keypoint set: COCO's for 17 keypoints, DEFAULT_KEYPOINT_SIGMA each otherwise."""
    if num_keypoints == len(COCO_KEYPOINT_SIGMAS):
        return np.asarray(COCO_KEYPOINT_SIGMAS, dtype=np.float64)
    return np.full(num_keypoints, DEFAULT_KEYPOINT_SIGMA, dtype=np.float64)


def coco_keypoint_metrics(
    ground_truth: dict[str, Any], predictions: list[dict[str, Any]], sigmas: Sequence[float] | None = None
) -> dict[str, float]:
    """COCO keypoint (OKS) AP of predictions (image_id, category_id, score, "keypoints" [x, y, score] * K).

    `ground_truth` is `MapDataset.coco_ground_truth()` of a keypoint dataset (annotations with
    "keypoints" and "num_keypoints"). `sigmas` defaults to keypoint_sigmas(K). Empty predictions
    and undefined values as in coco_detection_metrics.
    """
    if sigmas is None:  # the category lists the keypoints, even in a split without objects
        sigmas = keypoint_sigmas(len(ground_truth["categories"][0]["keypoints"]))
    sigmas = np.asarray(sigmas, dtype=np.float64)
    results = []
    for p in predictions:
        points = [float(v) for v in np.asarray(p["keypoints"], dtype=np.float64).reshape(-1)]
        if len(points) != 3 * len(sigmas):
            raise DatasetError(f"a prediction has {len(points) // 3} keypoints, the OKS sigmas {len(sigmas)}")
        results.append(
            {"image_id": p["image_id"], "category_id": int(p["category_id"]), "keypoints": points,
             "score": float(p["score"])}
        )
    return _coco_metrics(ground_truth, results, "keypoints", KEYPOINT_METRICS, sigmas)


def _coco_metrics(
    ground_truth: dict[str, Any],
    results: list[dict[str, Any]],
    iou_type: str,
    keys: tuple[str, ...],
    sigmas: np.ndarray | None = None,
) -> dict[str, float]:
    """COCOeval of `iou_type` ("bbox", "segm" or "keypoints"), its first AP values under `keys`, in percent."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return _no_prediction_metrics(ground_truth, keys)
    known_images = {image["id"] for image in ground_truth.get("images", [])}
    unknown = {p["image_id"] for p in results} - known_images
    if unknown:
        raise DatasetError(f"predictions refer to image ids missing from the ground truth: {sorted(unknown)[:5]}")

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(ground_truth)
        coco_gt.dataset.setdefault("info", {})
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats[: len(keys)]
    return {key: float(v * 100.0) if v >= 0 else math.nan for key, v in zip(keys, stats, strict=True)}


def _no_prediction_metrics(ground_truth: dict[str, Any], keys: tuple[str, ...] = BBOX_METRICS) -> dict[str, float]:
    """What COCOeval would report for zero detections: 0 where ground truth exists, NaN where none does.

    pycocotools' loadRes cannot take an empty list, so this case is computed here.
    """
    scored = [
        ann for ann in ground_truth.get("annotations", [])
        if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 1) > 0  # keypoint AP skips objects without any
    ]
    areas = [float(ann.get("area", 0.0)) for ann in scored]
    metrics = {}
    for key in keys:
        low, high = AREA_RANGES.get(key.split("/")[-1], AREA_RANGES["all"])
        metrics[key] = 0.0 if any(low <= area <= high for area in areas) else math.nan
    return metrics


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a bool [H, W] mask, counts as str so it can go into JSON."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError as exc:
        raise DatasetError("pycocotools is needed for COCO masks: pip install 'focoos[training]'") from exc

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """int64 [C, C + 1] pixel counts, rows = ground-truth class, columns = predicted class, and a last
    column for pixels the prediction leaves unlabeled (`ignore`: Focoos drops one-pixel regions).

    Pixels whose ground truth is `ignore` are not counted. Sum the matrices of all images and call
    semantic_metrics once, so every pixel of the split weighs the same.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise DatasetError(f"prediction is {pred.shape} but ground truth is {gt.shape}")
    valid = gt != ignore
    truth, guess = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
    guess[guess == ignore] = num_classes
    for name, values, top in (("ground truth", truth, num_classes), ("prediction", guess, num_classes + 1)):
        if values.size and (values.min() < 0 or values.max() >= top):
            raise DatasetError(f"{name} holds class values outside 0..{num_classes - 1}")
    columns = num_classes + 1
    return np.bincount(truth * columns + guess, minlength=num_classes * columns).reshape(num_classes, columns)


def semantic_metrics(confusion: np.ndarray) -> dict[str, float]:
    """mIoU, frequency-weighted IoU, mean class accuracy and pixel accuracy in percent, as detectron2 computes them.

    `confusion` is confusion_matrix's (rows ground truth; an optional last column of unlabeled pixels
    counts them as misses of their true class, against no class). Like detectron2's SemSegEvaluator, the
    means skip classes with no ground-truth pixel (so also classes absent from both); pixels
    predicted as such a class still count against the true class. NaN everywhere when nothing was scored.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[1] not in (conf.shape[0], conf.shape[0] + 1):
        raise DatasetError(f"a confusion matrix must be [C, C] or [C, C + 1], got shape {conf.shape}")
    classes = conf[:, : conf.shape[0]]
    tp, pos_gt, pos_pred = np.diag(classes), conf.sum(axis=1), classes.sum(axis=0)
    total = pos_gt.sum()
    if total == 0:
        return {key: math.nan for key in SEMSEG_METRICS}
    present = pos_gt > 0
    iou = tp[present] / (pos_gt + pos_pred - tp)[present]
    acc = tp[present] / pos_gt[present]
    values = (iou.mean(), (iou * pos_gt[present] / total).sum(), acc.mean(), tp.sum() / total)
    return {key: float(v * 100.0) for key, v in zip(SEMSEG_METRICS, values, strict=True)}


def classification_metrics(labels: Sequence[int], predictions_top5: list[list[int]]) -> dict[str, float]:
    """Top-1 and top-5 accuracy in percent; each prediction lists class ids, best first."""
    if len(labels) != len(predictions_top5):
        raise DatasetError(f"{len(labels)} labels but {len(predictions_top5)} predictions")
    if len(labels) == 0:
        return {"classification/top1": 0.0, "classification/top5": 0.0}
    truth = np.asarray(labels, dtype=np.int64)
    top1 = np.asarray([bool(p) and int(p[0]) == t for p, t in zip(predictions_top5, truth, strict=True)])
    top5 = np.asarray([int(t) in [int(c) for c in p[:5]] for p, t in zip(predictions_top5, truth, strict=True)])
    return {"classification/top1": float(top1.mean() * 100.0), "classification/top5": float(top5.mean() * 100.0)}


__all__ = [
    "BBOX_METRICS",
    "COCO_KEYPOINT_SIGMAS",
    "KEYPOINT_METRICS",
    "SEGM_METRICS",
    "SEMSEG_METRICS",
    "classification_metrics",
    "coco_detection_metrics",
    "coco_instance_metrics",
    "coco_keypoint_metrics",
    "confusion_matrix",
    "keypoint_sigmas",
    "mask_to_rle",
    "semantic_metrics",
]
