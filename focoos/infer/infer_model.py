"""InferModel: an exported model file run by ONNX Runtime or TorchScript, with the same API as FocoosModel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from focoos.benchmark import DEFAULT_ITERATIONS, measure_latency, random_batch
from focoos.errors import ExportError, ModelInfoError, ModelNotFoundError
from focoos.infer.export import EXPORT_META, INFO_FILE, export_filename
from focoos.infer.pipeline import InferencePipeline, LocalModel
from focoos.infer.runtimes import load_runtime
from focoos.ports import ExportFormat, LatencyMetrics, ModelInfo, RuntimeType, to_hw

# Suffixes each format is read from; .torchscript is what earlier versions of this package wrote.
FORMAT_SUFFIXES: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.ONNX: (".onnx",),
    ExportFormat.TORCHSCRIPT: (".pt", ".torchscript"),
}
# Without a runtime type or export.json: TorchScript as Focoos defaults to, ONNX on the CPU provider.
DEFAULT_RUNTIME: dict[ExportFormat, RuntimeType] = {
    ExportFormat.ONNX: RuntimeType.ONNX_CPU,
    ExportFormat.TORCHSCRIPT: RuntimeType.TORCHSCRIPT_32,
}


def _file_format(path: Path) -> ExportFormat:
    for export_format, suffixes in FORMAT_SUFFIXES.items():
        if path.suffix in suffixes:
            return export_format
    known = ", ".join(s for suffixes in FORMAT_SUFFIXES.values() for s in suffixes)
    raise ModelInfoError(f"{path} is not an exported model: its extension must be one of {known}")


def _read_export_meta(folder: Path) -> dict[str, Any]:
    path = folder / EXPORT_META
    return json.loads(path.read_text()) if path.is_file() else {}


def _file_in_folder(folder: Path, runtime_type: RuntimeType | None, meta: dict[str, Any]) -> Path:
    """The model file of an export folder: export.json's when it fits the runtime, else Focoos' file name."""
    recorded = folder / meta["file"] if meta.get("file") else None
    if runtime_type is None:
        if recorded is not None:
            return recorded
        for export_format in (ExportFormat.TORCHSCRIPT, ExportFormat.ONNX):
            candidate = folder / export_filename(DEFAULT_RUNTIME[export_format])
            if candidate.is_file():
                return candidate
        raise ExportError(f"{folder} is not an export folder: it holds no {EXPORT_META}, model.pt or model.onnx")
    wanted = runtime_type.to_export_format()
    if recorded is not None and recorded.is_file() and _file_format(recorded) == wanted:
        return recorded
    candidate = folder / export_filename(runtime_type)
    if candidate.is_file():
        return candidate
    if meta.get("runtime_type"):
        raise ModelInfoError(
            f"{folder} holds a {meta['runtime_type']} export; it cannot run as {runtime_type.value}"
        )
    raise ExportError(f"{folder} holds no {candidate.name} to run as {runtime_type.value}")


def locate_export(path: Path, runtime_type: RuntimeType | None) -> tuple[Path, RuntimeType, dict[str, Any]]:
    """(model file, runtime type, its export.json entry or {}) for a model file or an export folder."""
    if not path.exists():
        raise ModelNotFoundError(f"exported model not found: {path}")
    folder = path if path.is_dir() else path.parent
    meta = _read_export_meta(folder)
    model_file = _file_in_folder(folder, runtime_type, meta) if path.is_dir() else path
    if not model_file.is_file():
        raise ExportError(f"{model_file} is missing from the export folder {folder}")
    export_format = _file_format(model_file)
    own_meta = meta if meta.get("file") == model_file.name else {}
    if runtime_type is None:
        runtime_type = RuntimeType(own_meta.get("runtime_type", DEFAULT_RUNTIME[export_format]))
    elif runtime_type.to_export_format() != export_format:
        expected = " or ".join(FORMAT_SUFFIXES[runtime_type.to_export_format()])
        raise ModelInfoError(
            f"{model_file.name} is an {export_format.value} file; it cannot run as {runtime_type.value}, "
            f"which expects {expected}"
        )
    return model_file, runtime_type, own_meta


class InferModel(LocalModel):
    """An exported model (ONNX or TorchScript file with model_info.json beside it) for local inference.

    `model_path` is the model file, as in Focoos (`.../model.onnx`, `.../model.pt`), or its folder.
    Without `runtime_type`, the one recorded at export is used (else TorchScript for .pt, ONNX_CPU for .onnx).

    Example:
        >>> model = InferModel("exports/fai-detr-m-coco/onnx_cpu/model.onnx", RuntimeType.ONNX_CPU)
        >>> det = model.infer("image.jpg", threshold=0.5)
    """

    def __init__(
        self, model_path: str | Path, runtime_type: RuntimeType | str | None = None, device: str = "auto"
    ) -> None:
        requested = RuntimeType(runtime_type) if runtime_type is not None else None
        self.model_path, self.runtime_type, self.export_meta = locate_export(Path(model_path), requested)
        self.model_dir = self.model_path.parent
        info_path = self.model_dir / INFO_FILE
        if not info_path.is_file():
            raise ModelInfoError(f"{info_path} is missing: an exported model needs its {INFO_FILE} beside it")
        self.model_info = ModelInfo.from_json(info_path)
        self.runtime = load_runtime(
            self.model_path,
            self.runtime_type,
            self.export_meta.get("output_names"),
            self.model_info.input_hw,
            device,
        )
        self._pipeline = InferencePipeline(self.model_info, self.runtime)

    @property
    def device(self) -> str:
        return self.runtime.device

    def __repr__(self) -> str:
        return f"InferModel(name={self.name!r}, runtime={self.runtime_type.value}, path={str(self.model_path)!r})"

    def _engine(self) -> tuple[str, str]:
        return self.runtime_type.value, self.runtime.device

    def benchmark(
        self, iterations: int = DEFAULT_ITERATIONS, size: int | tuple[int, int] | None = None
    ) -> LatencyMetrics:
        """Latency of the network alone at `size` (default: the export size), in milliseconds."""
        size_hw = to_hw(size) if size is not None else self.model_info.input_hw
        batch = random_batch(size_hw)
        return measure_latency(
            lambda: self.runtime(batch), iterations, self.runtime_type.value, size_hw, self.runtime.device
        )
