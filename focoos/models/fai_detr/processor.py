"""FAI-DETR's numpy postprocessing: the same code runs locally and in the Triton postprocess step."""

from __future__ import annotations

import numpy as np

from focoos.processing.postprocess import DetectionArrays, postprocess_detr


def postprocess_options(config: dict) -> dict:
    """nms_iou: optional class-wise NMS over the kept boxes (Focoos' DETR has none)."""
    return {"nms_iou": None if config.get("nms_iou") is None else float(config["nms_iou"])}


def postprocess(
    task: str, outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]], threshold: float, top_k: int,
    *, nms_iou: float | None = None,
) -> list[DetectionArrays]:
    return postprocess_detr(outputs["boxes"], outputs["logits"], original_hw, threshold, top_k, nms_iou=nms_iou)
