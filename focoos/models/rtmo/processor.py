"""RTMO's numpy postprocessing: the same code runs locally and in the Triton postprocess step."""

from __future__ import annotations

import numpy as np

from focoos.processing.postprocess import KEYPOINT_NMS_THR as NMS_THR
from focoos.processing.postprocess import KEYPOINT_SCORE_THR as SCORE_THR
from focoos.processing.postprocess import DetectionArrays, postprocess_keypoints


def postprocess_options(config: dict) -> dict:
    return {"score_thr": float(config.get("score_thr", SCORE_THR)), "nms_thr": float(config.get("nms_thr", NMS_THR))}


def postprocess(
    task: str, outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]], threshold: float, top_k: int,
    *, score_thr: float = SCORE_THR, nms_thr: float = NMS_THR,
) -> list[DetectionArrays]:
    return postprocess_keypoints(outputs["boxes"], outputs["scores"], outputs["keypoints"], original_hw, threshold,
                                 top_k, score_thr=score_thr, nms_thr=nms_thr)
