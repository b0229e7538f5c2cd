"""One inference flow for every local runner: load -> preprocess -> network -> postprocess -> results.

Eager PyTorch and the exported runtimes differ only in the `run_network` callable, which is what
keeps their answers equal (rule 3 of the architecture).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focoos.benchmark import DEFAULT_ITERATIONS, measure_latency, random_batch
from focoos.models.family import family_spec
from focoos.ports import FocoosDetections, InferLatency, LatencyMetrics, ModelInfo, Task, seconds_since, to_hw
from focoos.processing import DetectionArrays, annotate_image, load_images, preprocess_images, validate_threshold
from focoos.processing.postprocess import check_network_outputs
from focoos.processing.transport import DEFAULT_THRESHOLD, draws_boxes
from focoos.results import to_focoos_detections

NetworkFn = Callable[[np.ndarray], dict[str, np.ndarray]]


def postprocess_outputs(
    info: ModelInfo,
    outputs: dict[str, np.ndarray],
    original_hw: list[tuple[int, int]],
    threshold: float,
    top_k: int | None = None,
) -> list[DetectionArrays]:
    """Run the family's numpy processor with the model's top_k and options (the builder serves the same)."""
    check_network_outputs(outputs, original_hw)
    return family_spec(info.model_family).postprocess(info, outputs, original_hw, threshold,
                                                      model_top_k(info) if top_k is None else top_k)


def model_top_k(info: ModelInfo) -> int:
    """The detections a model keeps per image unless a call asks for fewer: local and served alike."""
    return family_spec(info.model_family).default_top_k(info)


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
        threshold: float = DEFAULT_THRESHOLD,
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
                    draw_boxes=draws_boxes(self.info.task.value), keypoints=result.keypoints,
                    skeleton=self.info.config.get("skeleton"),
                )
            latency.annotate = seconds_since(start)
        for det in detections:
            det.latency = latency.model_copy()
        return detections


class LocalModel:
    """What FocoosModel and InferModel share: the metadata properties and one infer() through the pipeline.

    Subclasses set `model_info` and `_pipeline`, and name their engine and device for benchmarks.
    """

    model_info: ModelInfo
    _pipeline: InferencePipeline

    @property
    def name(self) -> str:
        return self.model_info.name

    @property
    def classes(self) -> list[str]:
        return self.model_info.classes

    @property
    def task(self) -> Task:
        return self.model_info.task

    def _engine(self) -> tuple[str, str]:
        """(engine name, device) that benchmark results report."""
        raise NotImplementedError

    def infer(
        self,
        image: Any,
        threshold: float = DEFAULT_THRESHOLD,
        annotate: bool = False,
        *,
        top_k: int | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> FocoosDetections | list[FocoosDetections]:
        """Detect in one image or a list of them.

        Args:
            image: path, http(s) URL, bytes, PIL image, numpy HWC RGB, torch CHW, or a list of these.
            threshold: minimum score in [0, 1].
            annotate: also draw the detections into `FocoosDetections.image` (RGB numpy).
            top_k: the most detections per image (default: the config's, else the task's).
            image_size: run the network at this size (int or (h, w)); default im_size, or each image's
                own size for eager segmentation (as Focoos does).

        Returns:
            FocoosDetections for one image, a list of them for a list; boxes xyxy in original pixels.
            A misspelt option is a TypeError, never silently ignored.
        """
        return self._pipeline(image, threshold=threshold, annotate=annotate, top_k=top_k, image_size=image_size)

    __call__ = infer

    def end2end_benchmark(
        self, iterations: int = DEFAULT_ITERATIONS, size: int | tuple[int, int] | None = None
    ) -> LatencyMetrics:
        """Latency of infer() on a random image of `size` (default im_size), pre/postprocessing included."""
        size_hw = to_hw(size) if size is not None else self.model_info.input_hw
        image = random_batch(size_hw)[0].transpose(1, 2, 0).copy()
        engine, device = self._engine()
        return measure_latency(lambda: self.infer(image, threshold=DEFAULT_THRESHOLD), iterations,
                               f"{engine}+processing", size_hw, device)
