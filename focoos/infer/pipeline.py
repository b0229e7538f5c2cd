"""One inference flow for every local runner: load -> preprocess -> network -> postprocess -> results.

Eager PyTorch and the exported runtimes differ only in the `run_network` callable, which is what
keeps their answers equal (rule 3 of the architecture).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focoos.ports import FocoosDetections, InferLatency, ModelInfo, Task, seconds_since, to_hw
from focoos.processing import (
    DetectionArrays,
    annotate_image,
    load_images,
    postprocess_task,
    preprocess_images,
    validate_threshold,
)
from focoos.processing.postprocess import TASK_TOP_K, postprocess_options
from focoos.results import to_focoos_detections

NetworkFn = Callable[[np.ndarray], dict[str, np.ndarray]]
INFER_OPTIONS = ("top_k", "image_size")  # keyword options of infer() beyond image, threshold, annotate


def postprocess_outputs(
    info: ModelInfo,
    outputs: dict[str, np.ndarray],
    original_hw: list[tuple[int, int]],
    threshold: float,
    top_k: int | None = None,
) -> list[DetectionArrays]:
    """Run the task's numpy postprocessing with the model's top_k and mask threshold."""
    return postprocess_task(
        info.task.value, outputs, original_hw, threshold, top_k or default_top_k(info),
        **postprocess_options(info.config),
    )  # fmt: skip


def default_top_k(info: ModelInfo) -> int:
    """The config's top_k; without one, every class for classification (Focoos keeps all over the
    threshold), else the task's default. The builder serves the same number."""
    if "top_k" in info.config:
        return int(info.config["top_k"])
    if info.task == Task.CLASSIFICATION:
        return info.num_classes
    return TASK_TOP_K.get(info.task.value, 100)


def check_infer_options(options: dict[str, Any]) -> dict[str, Any]:
    """Misspelt infer() options are errors, not silently ignored."""
    unknown = sorted(set(options) - set(INFER_OPTIONS))
    if unknown:
        raise TypeError(f"infer() got unknown option(s) {', '.join(unknown)}; valid: {', '.join(INFER_OPTIONS)}")
    return options


class InferencePipeline:
    """Runs a network callable (float32 NCHW pixel batch -> named numpy outputs) with shared processing.

    native_size: without an explicit image_size, run each image at its own size (Focoos' eager
    segmentation does); otherwise resize to the model's im_size (what a fixed exported graph takes).
    """

    def __init__(self, info: ModelInfo, run_network: NetworkFn, native_size: bool = False) -> None:
        self.info = info
        self.run_network = run_network
        self.native_size = native_size

    def __call__(
        self,
        images: Any,
        threshold: float = 0.5,
        annotate: bool = False,
        top_k: int | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> FocoosDetections | list[FocoosDetections]:
        threshold = validate_threshold(threshold)
        start = time.perf_counter()
        loaded, is_batch = load_images(images)
        imload = seconds_since(start)
        if image_size is not None:
            size_hw: tuple[int, int] | None = to_hw(image_size)
        else:
            size_hw = None if self.native_size else self.info.input_hw
        mixed_sizes = size_hw is None and len({im.shape[:2] for im in loaded}) > 1
        groups = [[im] for im in loaded] if mixed_sizes else [loaded]  # one batch needs one size
        detections = [d for group in groups for d in self._run(group, size_hw, threshold, annotate, top_k)]
        for det in detections:
            det.latency.imload = imload
        return detections if is_batch else detections[0]

    def _run(
        self, loaded: list[np.ndarray], size_hw: tuple[int, int] | None, threshold: float, annotate: bool,
        top_k: int | None,
    ) -> list[FocoosDetections]:
        latency = InferLatency()
        start = time.perf_counter()
        batch = preprocess_images(loaded, size_hw)
        latency.preprocess = seconds_since(start)

        start = time.perf_counter()
        outputs = self.run_network(batch)
        latency.inference = seconds_since(start)

        start = time.perf_counter()
        results = postprocess_outputs(self.info, outputs, [im.shape[:2] for im in loaded], threshold, top_k)
        detections = [to_focoos_detections(r, self.info.classes) for r in results]
        latency.postprocess = seconds_since(start)

        if annotate:
            start = time.perf_counter()
            for image, result, det in zip(loaded, results, detections, strict=True):
                det.image = annotate_image(
                    image, result.boxes, result.scores, result.classes, self.info.classes, result.masks,
                    draw_boxes=self.info.task != Task.SEMSEG,
                )
            latency.annotate = seconds_since(start)
        for det in detections:
            det.latency = latency.model_copy()
        return detections
