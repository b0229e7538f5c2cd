"""Static int8 quantization of an exported ONNX model with ONNX Runtime (Focoos' `focoos.infer.quantizer` API).

`OnnxQuantizer(cfg, input_model_path).quantize()` writes `<model>_int8.onnx` beside the input, calibrated on
real images, and returns its path; `InferModel(path, runtime_type=RuntimeType.ONNX_CPU)` runs it. Calibration
images go through the same resize as inference (`focoos.processing`), so the ranges measured are the ones
served. Graphs exported by this package normalise inside (they take raw 0..255 pixels): for them
`normalize_images` does not apply, because normalising the calibration data would calibrate the wrong ranges.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from focoos.errors import FocoosError
from focoos.ports import LatencyMetrics, RuntimeType

logger = logging.getLogger("focoos.quantizer")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # Focoos' calibration formats
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)  # Focoos' ImageNet statistics
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
EXPORT_MARKERS = ("export.json", "model_info.json")  # beside a model file: exported here, normalises inside


class QuantizationError(FocoosError):
    """The model cannot be quantized as configured (no calibration images, not an ONNX file, ...)."""


@dataclass
class QuantizationCfg:
    """Quantization settings; every field and default is Focoos 0.25's.

    calibration_images_folder: images to measure activation ranges on (searched recursively, so a dataset
        split folder in any layout works; `*_mask.png` label maps are skipped). Use the validation split the
        model was trained for: ranges from unrelated images cost accuracy.
    data_reader_limit: at most this many images (0: all).
    normalize_images: ImageNet mean/std on the calibration data, for graphs that expect normalised input;
        ignored for graphs exported by this package, which normalise inside.
    w_SNR, a_SNR: when set, log the weights / activations whose signal-to-noise ratio (dB) against fp32 is
        below the threshold (where accuracy goes).
    size: input size when the graph's own is dynamic (a static graph's size wins, as in Focoos).
    format: "QDQ" (QuantizeLinear/DequantizeLinear pairs around float ops) or "QO" (QLinear* operators).
    per_channel: one scale per output channel of each weight (more accurate for convolutions).
    op_types_to_quantize: ours; only these ONNX op types (e.g. ["Conv"]), None: ONNX Runtime's default set.
    """

    calibration_images_folder: str
    data_reader_limit: int = 100
    normalize_images: bool = True
    w_SNR: float | None = None
    a_SNR: float | None = None
    size: int = 512
    format: Literal["QDQ", "QO"] = "QDQ"
    per_channel: bool = True
    op_types_to_quantize: list[str] | None = None


def calibration_files(folder: str | Path, limit: int = 0) -> list[Path]:
    """Image files under `folder` in a stable order, at most `limit` (0: all)."""
    root = Path(folder)
    if not root.is_dir():
        raise QuantizationError(f"calibration images folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.stem.endswith("_mask"))
    if not files:
        raise QuantizationError(f"no {'/'.join(IMAGE_SUFFIXES)} images under {root}")
    return files[:limit] if limit > 0 else files


def dataset_images(dataset: Any, limit: int = 100) -> list[np.ndarray]:
    """RGB uint8 images of a dataset split (a MapDataset, or anything with `original_image(i)` and len)."""
    count = len(dataset) if limit <= 0 else min(limit, len(dataset))
    return [dataset.original_image(i) for i in range(count)]


def graph_normalises_inside(model_path: str | Path) -> bool:
    """Whether the ONNX file comes from this package's export (raw 0..255 pixels in, normalised in the graph)."""
    folder = Path(model_path).parent
    return any((folder / marker).is_file() for marker in EXPORT_MARKERS)


try:  # the base class only marks the protocol; without onnxruntime nothing here can run anyway
    from onnxruntime.quantization import CalibrationDataReader as _ReaderBase
except ImportError:  # pragma: no cover
    _ReaderBase = object  # type: ignore[assignment,misc]


class DataReader(_ReaderBase):
    """Calibration batches for ONNX Runtime: one preprocessed image per call (Focoos' DataReader arguments).

    `images` (RGB uint8 arrays) replaces the folder when given, e.g. `dataset_images(split)`.
    """

    def __init__(
        self,
        calibration_image_folder: str | None,
        limit: int = 1,
        size: int | tuple[int, int] = 512,
        model_path: str | None = None,
        normalize_images: bool = True,
        images: Iterable[np.ndarray] | None = None,
    ) -> None:
        from focoos.processing.image import load_image
        from focoos.processing.preprocess import preprocess_images

        self.calibration_image_folder = calibration_image_folder
        height, width = (size, size) if isinstance(size, int) else size
        self.input_name, dtype = "images", np.float32
        if model_path:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
            graph_input = session.get_inputs()[0]
            self.input_name = graph_input.name
            dtype = np.uint8 if graph_input.type == "tensor(uint8)" else np.float32
            _, _, h, w = graph_input.shape
            if isinstance(h, int) and isinstance(w, int):
                height, width = h, w
            if normalize_images and graph_normalises_inside(model_path):
                logger.info("%s normalises its input inside the graph: calibrating on raw pixels", model_path)
                normalize_images = False
        if images is None:
            if calibration_image_folder is None:
                raise QuantizationError("give a calibration images folder or the images")
            images = (load_image(path) for path in calibration_files(calibration_image_folder, limit))
        elif limit > 0:
            images = list(images)[:limit]
        batches = []
        for image in images:
            batch = preprocess_images([image], (height, width))
            if normalize_images:
                batch = (batch - PIXEL_MEAN[:, None, None]) / PIXEL_STD[:, None, None]
            batches.append(batch.astype(dtype))
        if not batches:
            raise QuantizationError("no calibration images")
        self.nhwc_data_list = batches  # Focoos' attribute name; the batches are NCHW
        self.datasize = len(batches)
        self.size_hw = (height, width)
        self.enum_data: Iterator[dict[str, np.ndarray]] | None = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.enum_data is None:
            self.enum_data = iter([{self.input_name: batch} for batch in self.nhwc_data_list])
        return next(self.enum_data, None)

    def rewind(self) -> None:
        self.enum_data = None


class OnnxQuantizer:
    """Quantize an ONNX model to int8 with calibration images; benchmark and error analysis on request.

    Example:
        >>> cfg = QuantizationCfg(calibration_images_folder="data/valid", size=224, format="QDQ")
        >>> path = OnnxQuantizer(cfg, "exports/model.onnx").quantize(benchmark=False)
        >>> InferModel(path, runtime_type=RuntimeType.ONNX_CPU).infer("image.jpg")
    """

    def __init__(
        self, cfg: QuantizationCfg, input_model_path: str | Path, images: Iterable[np.ndarray] | None = None
    ) -> None:
        if not str(input_model_path).endswith(".onnx"):
            raise QuantizationError(f"input model must be an ONNX model, got {input_model_path}")
        if cfg.format not in ("QDQ", "QO"):
            raise QuantizationError(f"format must be QDQ or QO, got {cfg.format!r}")
        self.cfg = cfg
        self.logger = logger
        self.input_model_path = input_model_path
        self.data_reader = DataReader(
            calibration_image_folder=cfg.calibration_images_folder if images is None else None,
            limit=cfg.data_reader_limit,
            size=cfg.size,
            model_path=str(input_model_path),
            normalize_images=cfg.normalize_images,
            images=images,
        )
        self.benchmarks: dict[str, LatencyMetrics] = {}
        self.weight_snr: dict[str, float] = {}
        self.activation_snr: dict[str, float] = {}

    def output_path(self) -> Path:
        """Where `quantize` writes: `<model>_int8.onnx` beside the input (Focoos' name)."""
        return Path(str(self.input_model_path)[: -len(".onnx")] + "_int8.onnx")

    def quantize(self, benchmark: bool = True) -> Path:
        """Write the int8 model and return its path; with `benchmark`, time fp32 and int8 (`self.benchmarks`).

        The file appears complete or not at all (written in a temporary folder, then renamed)."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.preprocess import quant_pre_process

        output = self.output_path()
        qdq = self.cfg.format == "QDQ"
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=output.parent) as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            try:
                quant_pre_process(str(self.input_model_path), str(prepared), auto_merge=True,
                                  skip_symbolic_shape=False, verbose=0)
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime's symbolic shape inference misses some ops (TopK)
                self.logger.warning("symbolic shape inference failed (%s): preparing with ONNX's shape inference", exc)
                quant_pre_process(str(self.input_model_path), str(prepared), skip_symbolic_shape=True, verbose=0)
            self.logger.info("quantizing %s to %s", self.input_model_path, output)
            self.data_reader.rewind()
            quantize_static(
                str(prepared),
                str(Path(tmp) / output.name),
                self.data_reader,
                quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
                op_types_to_quantize=self.cfg.op_types_to_quantize,
                per_channel=self.cfg.per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QInt8 if qdq else QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
            shutil.move(str(Path(tmp) / output.name), output)
        self.logger.info("quantized model saved to %s", output)
        if benchmark:
            for precision, path in (("fp32", self.input_model_path), ("int8", output)):
                self.benchmarks[precision] = metrics = self.benchmark(path, device="cpu", iterations=100)
                self.logger.info("%s model: %s", precision, metrics)
        if self.cfg.w_SNR is not None:
            self.weight_snr = self._weight_snr(output)
            for name, snr in self.weight_snr.items():
                if snr < self.cfg.w_SNR:
                    self.logger.info("weight %s: SNR %.1f dB", name, snr)
        if self.cfg.a_SNR is not None:
            self.activation_snr = self._activation_snr(output)
            for name, snr in self.activation_snr.items():
                if snr < self.cfg.a_SNR:
                    self.logger.info("activation %s: SNR %.1f dB", name, snr)
        return output

    def _weight_snr(self, quantized: Path) -> dict[str, float]:
        import onnxruntime.quantization.qdq_loss_debug as debug

        matching = debug.create_weight_matching(str(self.input_model_path), str(quantized))
        return {name: self.singal_noise_ratio(m["float"], m["dequantized"])
                for name, m in matching.items() if "float" in m and "dequantized" in m}

    def _activation_snr(self, quantized: Path) -> dict[str, float]:
        """SNR of every activation of the first calibration image, quantized model against fp32."""
        import onnxruntime.quantization.qdq_loss_debug as debug

        activations = []
        with tempfile.TemporaryDirectory(prefix=".snr-", dir=quantized.parent) as tmp:
            for i, path in enumerate((self.input_model_path, quantized)):
                augmented = str(Path(tmp) / f"{i}.onnx")
                debug.modify_model_output_intermediate_tensors(str(path), augmented)
                reader = _FirstBatch(self.data_reader)
                activations.append(debug.collect_activations(augmented, reader))
        matching = debug.create_activation_matching(activations[1], activations[0])
        return {name: self.singal_noise_ratio(m["float"][0], m["post_qdq"][0])
                for name, m in sorted(matching.items()) if "float" in m and "post_qdq" in m}

    def singal_noise_ratio(self, x: Any, y: Any) -> float:
        """Signal-to-noise ratio of y against the reference x, in dB (Focoos' spelling of the name)."""
        left, right = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
        epsilon = 1e-5
        return 20 * math.log10(max(float(np.linalg.norm(left)), epsilon)
                               / max(float(np.linalg.norm(left - right)), epsilon))

    def benchmark(
        self, model_path: str | Path, device: Literal["cuda", "cpu"] = "cpu", iterations: int = 100
    ) -> LatencyMetrics:
        """Latency of an ONNX model's network (ms) on the CPU or CUDA provider."""
        from focoos.infer.infer_model import InferModel

        runtime_type = RuntimeType.ONNX_CPU if device == "cpu" else RuntimeType.ONNX_CUDA32
        return InferModel(model_path, runtime_type=runtime_type).benchmark(iterations=iterations)


class _FirstBatch:
    """A calibration reader that yields only the first batch of another (for activation comparisons)."""

    def __init__(self, reader: DataReader) -> None:
        self._batch: dict[str, np.ndarray] | None = {reader.input_name: reader.nhwc_data_list[0]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch, self._batch = self._batch, None
        return batch

    def rewind(self) -> None:
        pass
