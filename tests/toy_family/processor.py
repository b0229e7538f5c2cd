"""The toy detector's numpy postprocessing: copied into the Triton postprocess step by the builder."""

from __future__ import annotations

import numpy as np

from focoos.processing.postprocess import DetectionArrays, postprocess_detr


def postprocess_options(config: dict) -> dict:
    return {}


def postprocess(
    task: str, outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]], threshold: float, top_k: int,
) -> list[DetectionArrays]:
    return postprocess_detr(outputs["boxes"], outputs["logits"], original_hw, threshold, top_k)
