"""Comparison of detection results between runners (rule 3: same answer everywhere)."""

from __future__ import annotations

from focoos.ports import FocoosDetections

BOX_TOL_PX = 1
SCORE_TOL = 1e-3


def _same_keypoints(a: list | None, b: list | None) -> bool:
    """Both without keypoints, or each keypoint's x, y within 1 px and its score within 1e-3."""
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and all(
        abs(p[0] - q[0]) <= BOX_TOL_PX and abs(p[1] - q[1]) <= BOX_TOL_PX and abs(p[2] - q[2]) <= SCORE_TOL
        for p, q in zip(a, b, strict=True)
    )


def assert_same_detections(a: FocoosDetections, b: FocoosDetections) -> None:
    """Every detection of `a` has a partner in `b`: same class, boxes within 1 px, scores within 1e-3 (and
    keypoints within 1 px, their scores within 1e-3)."""
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
            if (other.cls_id == det.cls_id and same_box and abs(other.conf - det.conf) <= SCORE_TOL
                    and _same_keypoints(det.keypoints, other.keypoints)):
                unmatched.pop(i)
                break
        else:
            raise AssertionError(f"no partner for {det} among {unmatched[:5]}")
