"""FocoosModel: a torch network plus its ModelInfo, with infer, export, benchmark and train."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from focoos.benchmark import DEFAULT_ITERATIONS, export_summary, latency_summary, measure_latency, random_batch, report
from focoos.errors import ExportError, RandomWeightsError, RuntimeUnavailableError
from focoos.hardware import torch_device, warn_fallback
from focoos.infer.export import DEFAULT_ONNX_OPSET, export_filename, export_network
from focoos.infer.infer_model import InferModel
from focoos.infer.pipeline import InferencePipeline, LocalModel
from focoos.models.family import family_spec
from focoos.ports import ArtifactName, LatencyMetrics, ModelInfo, RuntimeType, to_hw
from focoos.settings import exports_dir
from focoos.weights import save_checkpoint


def resolve_device(device: str) -> torch.device:
    """The device to run on here: a GPU that is not there falls back to the CPU with one warning."""
    return torch_device(device)


def _load_export(path: Path, runtime_type: RuntimeType, device: str) -> InferModel:
    """The exported file in its runtime; an ONNX GPU provider missing here (TensorRT, CUDA) runs on the CPU
    provider instead, with one warning, as Focoos does."""
    try:
        return InferModel(path, runtime_type, device=device)
    except RuntimeUnavailableError as exc:
        if not runtime_type.is_onnx or runtime_type == RuntimeType.ONNX_CPU:
            raise
        warn_fallback(f"runtime {runtime_type.value}", f"{RuntimeType.ONNX_CPU.value} on the CPU",
                      str(exc).split(": ", 1)[-1].split(". Available", 1)[0])
        return InferModel(path, RuntimeType.ONNX_CPU, device="cpu")


class FocoosModel(LocalModel):
    """A model ready for local inference; get one from `ModelManager.get`.

    Example:
        >>> model = ModelManager.get("fai-detr-m-coco")
        >>> det = model.infer("image.jpg", threshold=0.5, annotate=True)
        >>> [(d.label, d.conf, d.bbox) for d in det.detections]
    """

    def __init__(
        self,
        model: torch.nn.Module,
        model_info: ModelInfo,
        device: str = "auto",
        random_weights: str | None = None,
        allow_random_weights: bool = False,
    ) -> None:
        """random_weights: why the network holds random weights and how to load real ones (None: weights loaded).
        allow_random_weights: build and export it anyway (marked untrained), see served_info."""
        self.random_weights = random_weights
        self.allow_random_weights = allow_random_weights
        self.replace_network(model, model_info, device)

    def replace_network(self, model: torch.nn.Module, model_info: ModelInfo, device: str | None = None) -> None:
        """Swap in new weights/metadata (after training) keeping one inference path."""
        target = resolve_device(device) if device is not None else self.device
        self.model = model.to(target).eval()
        self.model_info = model_info
        # Focoos' eager segmentation runs each image at its own size; other tasks resize to im_size.
        native = family_spec(model_info.model_family).native_size
        self._pipeline = InferencePipeline(model_info, self._run_network, native_size=native)

    # -- properties users know from Focoos (name, classes, task: LocalModel)
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def resolution(self) -> tuple[int, int]:
        return self.model_info.input_hw

    @property
    def config(self) -> dict[str, Any]:
        return self.model_info.config

    def __repr__(self) -> str:
        return f"FocoosModel(name={self.name!r}, family={self.model_info.model_family.value}, device={self.device})"

    def served_info(self, allow_random_weights: bool = False) -> ModelInfo:
        """The info a repository or an export carries.

        Random weights would serve meaningless answers under the pretrained model's name and metrics, so they
        raise RandomWeightsError unless allowed (here or at ModelManager.get), and are then marked untrained.
        """
        if self.random_weights is None:
            return self.model_info
        if not (allow_random_weights or self.allow_random_weights):
            raise RandomWeightsError(
                f"{self.name}: {self.random_weights}. To build or export its random weights on purpose, pass "
                f"allow_random_weights=True (CLI: --allow-random-weights): the result is marked untrained."
            )
        return self.model_info.as_untrained()

    # -- inference
    def _run_network(self, images: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(images).to(self.device))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {
            name: out.float().cpu().numpy()
            for name, out in zip(self.model.output_names, outputs, strict=True)
        }

    # -- export and benchmark
    def export(
        self,
        runtime_type: RuntimeType = RuntimeType.TORCHSCRIPT_32,
        onnx_opset: int = DEFAULT_ONNX_OPSET,
        out_dir: str | Path | None = None,
        device: str = "auto",
        simplify_onnx: bool = True,
        overwrite: bool = True,
        image_size: int | tuple[int, int] | None = None,
        dynamic_axes: bool = True,
        allow_random_weights: bool = False,
    ) -> InferModel:
        """Export the network (no pre/postprocessing) and return an InferModel running it.

        Writes out_dir/model.onnx or out_dir/model.pt with model_info.json (default out_dir:
        exports_dir()/<name>/<runtime_type>); other files in out_dir stay. With overwrite=False an
        existing export of the same format and size is reused as it is.
        ONNX graphs take `images` float32 NCHW raw pixels (0..255) and normalise inside; outputs keep the eager names.
        simplify_onnx: ONNX Runtime's basic offline graph optimisation of the ONNX file, as Focoos does on the CPU
        (focoos.infer.export.optimize_onnx: same outputs, portable across providers); constants are always folded.
        Random weights raise RandomWeightsError unless allow_random_weights (see served_info).
        """
        info = self.served_info(allow_random_weights)
        runtime_type = RuntimeType(runtime_type)
        out_dir = Path(out_dir) if out_dir is not None else exports_dir() / self.name / runtime_type.value
        device = str(resolve_device(device))  # a GPU asked for and absent: the CPU, said once
        if not overwrite and (out_dir / export_filename(runtime_type)).is_file():
            return self._reuse_export(out_dir, runtime_type, device, image_size)
        export_device = "cpu" if runtime_type.is_onnx else device
        original_device = self.device
        start = time.perf_counter()
        try:
            export_network(
                self.model,
                info,
                runtime_type,
                out_dir,
                onnx_opset=onnx_opset,
                device=export_device,
                overwrite=overwrite,
                image_size=image_size,
                dynamic_axes=dynamic_axes,
                optimize=simplify_onnx,
            )
        finally:
            self.model.to(original_device)
        path = out_dir / export_filename(runtime_type)
        report(export_summary(self.name, runtime_type.value, path, time.perf_counter() - start))
        return _load_export(path, runtime_type, device)

    def _reuse_export(
        self, out_dir: Path, runtime_type: RuntimeType, device: str, image_size: int | tuple[int, int] | None
    ) -> InferModel:
        existing = _load_export(out_dir / export_filename(runtime_type), runtime_type, device)
        wanted = to_hw(image_size) if image_size is not None else self.resolution
        if existing.model_info.input_hw != wanted:
            raise ExportError(
                f"{existing.model_path} was exported at {existing.model_info.input_hw}, not {wanted}; "
                f"pass overwrite=True to export again"
            )
        return existing

    def benchmark(
        self, iterations: int = DEFAULT_ITERATIONS, size: int | tuple[int, int] | None = None, device: str = "auto"
    ) -> LatencyMetrics:
        """Latency of the eager network alone (batch 1) at `size`, default the model's im_size."""
        size_hw = to_hw(size) if size is not None else self.resolution
        self.model.to(resolve_device(device))
        batch = torch.from_numpy(random_batch(size_hw)).to(self.device)

        def step() -> None:
            with torch.inference_mode():
                self.model(batch)
            if self.device.type == "cuda":
                torch.cuda.synchronize()

        metrics = measure_latency(step, iterations, "torch", size_hw, str(self.device))
        report(latency_summary(self.name, metrics))
        return metrics

    def _engine(self) -> tuple[str, str]:
        return "torch", str(self.device)

    def save(self, folder: str | Path) -> Path:
        """Write model_info.json and model_final.pth: a folder `ModelManager.get` loads."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.model, folder / ArtifactName.WEIGHTS.value)
        info = self.model_info if self.random_weights is None else self.model_info.as_untrained()
        info.dump_json(folder / ArtifactName.INFO.value)  # random weights stay marked when loaded again
        return folder

    # -- training (the training package is imported only here)
    def train(self, args: Any, data_train: Any, data_val: Any = None, hub: Any = None) -> ModelInfo:
        """Train in place; output_dir/run_name gets model_info.json (with metrics) and model_final.pth."""
        from focoos.training import train as run_training

        info = run_training(self, args, data_train, data_val, hub=hub)
        self.random_weights = None  # the trained weights replaced the random ones
        return info

    def eval(self, args: Any, data_test: Any, save_json: bool = True) -> dict[str, float]:
        """Metrics on a MapDataset with training's evaluator (bbox/AP, segm/AP, sem_seg/mIoU, ...).

        The metrics are printed, returned and kept in `model_info.val_metrics`; with save_json,
        output_dir/<run_name>_eval gets model_info.json and metrics.json (Focoos' layout).
        """
        from focoos.training import evaluate_model

        return evaluate_model(self, args, data_test, save_json=save_json)
