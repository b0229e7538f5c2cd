"""Detection and classification metrics, in percent like Focoos and detectron2 report them.

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

# Order of COCOeval.stats for bbox: AP, AP50, AP75, APs, APm, APl (then the AR values).
BBOX_METRICS = ("bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APs", "bbox/APm", "bbox/APl")
# COCOeval's default area ranges (inclusive), in square pixels.
AREA_RANGES = {
    "all": (0.0, 1e10),
    "bbox/APs": (0.0, 32.0**2),
    "bbox/APm": (32.0**2, 96.0**2),
    "bbox/APl": (96.0**2, 1e10),
}


def coco_detection_metrics(ground_truth: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, float]:
    """COCO box AP of predictions (COCO results: image_id, category_id, bbox xywh, score) against ground truth.

    `ground_truth` is a COCO dict such as `MapDataset.coco_ground_truth()`. Empty predictions score
    0.0. A value COCOeval cannot define (no ground-truth box in that size range, or no ground truth
    at all) is NaN, as detectron2 reports it, rather than a misleading 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not predictions:
        return _no_prediction_metrics(ground_truth)
    known_images = {image["id"] for image in ground_truth.get("images", [])}
    unknown = {p["image_id"] for p in predictions} - known_images
    if unknown:
        raise DatasetError(f"predictions refer to image ids missing from the ground truth: {sorted(unknown)[:5]}")

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(ground_truth)
        coco_gt.dataset.setdefault("info", {})
        coco_gt.createIndex()
        results = [
            {
                "image_id": p["image_id"],
                "category_id": int(p["category_id"]),
                "bbox": [float(v) for v in p["bbox"]],
                "score": float(p["score"]),
            }
            for p in predictions
        ]
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats[: len(BBOX_METRICS)]
    return {key: float(v * 100.0) if v >= 0 else math.nan for key, v in zip(BBOX_METRICS, stats, strict=True)}


def _no_prediction_metrics(ground_truth: dict[str, Any]) -> dict[str, float]:
    """What COCOeval would report for zero detections: 0 where ground truth exists, NaN where none does.

    pycocotools' loadRes cannot take an empty list, so this case is computed here.
    """
    areas = [float(ann.get("area", 0.0)) for ann in ground_truth.get("annotations", []) if not ann.get("iscrowd", 0)]
    metrics = {}
    for key in BBOX_METRICS:
        low, high = AREA_RANGES.get(key, AREA_RANGES["all"])
        metrics[key] = 0.0 if any(low <= area <= high for area in areas) else math.nan
    return metrics


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


__all__ = ["BBOX_METRICS", "classification_metrics", "coco_detection_metrics"]
