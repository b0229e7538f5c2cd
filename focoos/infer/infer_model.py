"""InferModel: an exported model folder run by ONNX Runtime or TorchScript, with the same API as FocoosModel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from focoos.benchmark import measure_latency, random_batch
from focoos.errors import ExportError, ModelInfoError
from focoos.infer.export import EXPORT_META
from focoos.infer.pipeline import InferencePipeline, check_infer_options
from focoos.infer.runtimes import load_runtime
from focoos.ports import FocoosDetections, LatencyMetrics, ModelInfo, RuntimeType, to_hw


class InferModel:
    """Load an export folder (model_info.json + export.json + model file) and infer locally.

    Example:
        >>> model = InferModel("exported/fai-detr-m-coco", RuntimeType.ONNX_CPU)
        >>> det = model.infer("image.jpg", threshold=0.5)
    """

    def __init__(
        self, model_dir: str | Path, runtime_type: RuntimeType | None = None, device: str = "auto"
    ) -> None:
        self.model_dir = Path(model_dir)
        meta_path = self.model_dir / EXPORT_META
        if not meta_path.is_file():
            raise ExportError(f"{self.model_dir} is not an export folder: {EXPORT_META} is missing")
        self.export_meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.model_info = ModelInfo.from_json(self.model_dir / "model_info.json")
        exported_as = RuntimeType(self.export_meta["runtime_type"])
        self.runtime_type = RuntimeType(runtime_type) if runtime_type is not None else exported_as
        if self.runtime_type.is_onnx != exported_as.is_onnx:
            raise ModelInfoError(
                f"{self.model_dir} holds a {exported_as.value} export; it cannot run as {self.runtime_type.value}"
            )
        self.runtime = load_runtime(
            self.model_dir / self.export_meta["file"],
            self.runtime_type,
            self.export_meta["output_names"],
            self.model_info.input_hw,
            device,
        )
        self._pipeline = InferencePipeline(self.model_info, self.runtime)

    @property
    def name(self) -> str:
        return self.model_info.name

    @property
    def classes(self) -> list[str]:
        return self.model_info.classes

    def infer(
        self, image: Any, threshold: float = 0.5, annotate: bool = False, **kwargs: Any
    ) -> FocoosDetections | list[FocoosDetections]:
        """Same contract as FocoosModel.infer."""
        return self._pipeline(image, threshold=threshold, annotate=annotate, **check_infer_options(kwargs))

    __call__ = infer

    def benchmark(self, iterations: int = 50, size: int | tuple[int, int] | None = None) -> LatencyMetrics:
        """Latency of the network alone at `size` (default: the export size)."""
        size_hw = to_hw(size) if size is not None else self.model_info.input_hw
        batch = random_batch(size_hw)
        return measure_latency(
            lambda: self.runtime(batch), iterations, self.runtime_type.value, size_hw, self.runtime.device
        )

    def end2end_benchmark(self, iterations: int = 50) -> LatencyMetrics:
        """Latency of infer() on a random image at the export size, pre/postprocessing included."""
        image = random_batch(self.model_info.input_hw)[0].transpose(1, 2, 0).copy()
        return measure_latency(
            lambda: self.infer(image, threshold=0.5),
            iterations,
            f"{self.runtime_type.value}+processing",
            self.model_info.input_hw,
            self.runtime.device,
        )
