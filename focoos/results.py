"""Postprocessed arrays -> FocoosDetections: one conversion for local inference and the gRPC client."""

from __future__ import annotations

from focoos.ports import FocoosDet, FocoosDetections
from focoos.processing import DetectionArrays, to_base64


def to_focoos_detections(result: DetectionArrays, classes: list[str]) -> FocoosDetections:
    """Arrays -> FocoosDetections; masks become base64 PNG crops, keypoints [[x, y, score], ...], the Focoos form."""
    dets = []
    for i, (score, cls_id) in enumerate(zip(result.scores, result.classes, strict=True)):
        bbox = None if result.boxes is None else [int(round(float(v))) for v in result.boxes[i]]
        label = classes[int(cls_id)] if 0 <= int(cls_id) < len(classes) else None
        mask = None if result.masks is None else to_base64(result.masks[i])
        points = None if result.keypoints is None else result.keypoints[i].astype(float).tolist()
        dets.append(FocoosDet(bbox=bbox, conf=round(float(score), 6), cls_id=int(cls_id), label=label, mask=mask,
                              keypoints=points))
    return FocoosDetections(detections=dets)
