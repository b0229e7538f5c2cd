"""fai_cls's numpy postprocessing: the same code runs locally and in the Triton postprocess step."""

from __future__ import annotations

import numpy as np

from focoos.processing.postprocess import DetectionArrays, postprocess_classification


def postprocess_options(config: dict) -> dict:
    return {}


def postprocess(
    task: str, outputs: dict[str, np.ndarray], original_hw: list[tuple[int, int]], threshold: float, top_k: int,
) -> list[DetectionArrays]:
    return postprocess_classification(outputs["logits"], threshold, top_k)
