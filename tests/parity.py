"""Comparison of detection results between runners (rule 3: same answer everywhere)."""

from __future__ import annotations

from focoos.ports import FocoosDetections

BOX_TOL_PX = 1
SCORE_TOL = 1e-3


def assert_same_detections(a: FocoosDetections, b: FocoosDetections) -> None:
    """Every detection of `a` has a partner in `b`: same class, boxes within 1 px, scores within 1e-3."""
    assert len(a.detections) == len(b.detections), (len(a.detections), len(b.detections))
    unmatched = list(b.detections)
    for det in sorted(a.detections, key=lambda d: -d.conf):
        for i, other in enumerate(unmatched):
            same_box = (
                det.bbox is None
                and other.bbox is None
                or (
                    det.bbox is not None
                    and other.bbox is not None
                    and max(abs(x - y) for x, y in zip(det.bbox, other.bbox, strict=True)) <= BOX_TOL_PX
                )
            )
            if other.cls_id == det.cls_id and same_box and abs(other.conf - det.conf) <= SCORE_TOL:
                unmatched.pop(i)
                break
        else:
            raise AssertionError(f"no partner for {det} among {unmatched[:5]}")
