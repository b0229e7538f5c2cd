"""Runtimes for exported networks: ONNX Runtime (CPU, CUDA, TensorRT, CoreML) and TorchScript.

A runtime the machine lacks raises RuntimeUnavailableError listing what is there; nothing falls
back silently to a slower provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from focoos.errors import ExportError, RuntimeUnavailableError
from focoos.ports import RuntimeType
from focoos.processing.transport import NETWORK_INPUT
from focoos.settings import cache_dir

DEFAULT_MAX_BATCH_SIZE = 8  # the largest batch a TensorRT profile and a served model take, unless set

TORCHSCRIPT_META = "focoos_export.json"  # extra file FocoosModel.export stores inside model.pt

ONNX_PROVIDERS: dict[RuntimeType, str] = {
    RuntimeType.ONNX_CPU: "CPUExecutionProvider",
    RuntimeType.ONNX_CUDA32: "CUDAExecutionProvider",
    RuntimeType.ONNX_TRT32: "TensorrtExecutionProvider",
    RuntimeType.ONNX_TRT16: "TensorrtExecutionProvider",
    RuntimeType.ONNX_COREML: "CoreMLExecutionProvider",
}


def available_runtimes() -> list[RuntimeType]:
    """Runtimes this machine can run now (installed packages and devices)."""
    found: list[RuntimeType] = []
    try:
        import onnxruntime as ort

        providers = set(ort.get_available_providers())
        found += [rt for rt, provider in ONNX_PROVIDERS.items() if provider in providers]
    except ImportError:
        pass
    try:
        import torch  # noqa: F401

        found.append(RuntimeType.TORCHSCRIPT_32)
    except ImportError:
        pass
    return found


def _unavailable(runtime_type: RuntimeType, why: str) -> RuntimeUnavailableError:
    names = ", ".join(rt.value for rt in available_runtimes()) or "none"
    return RuntimeUnavailableError(
        f"runtime {runtime_type.value} is not available: {why}. Available: {names}"
    )


TENSORRT_WORKSPACE_BYTES = 2 << 30


def tensorrt_options(
    fp16: bool, engine_cache: Path | str, input_name: str, size_hw: tuple[int, int], max_batch_size: int
) -> dict[str, Any]:
    """ONNX Runtime's TensorRT EP options, the one definition the local runtime, the builder's config and
    the engine pre-build share (engines are cached per profile: the three must agree to reuse one).

    An engine cache on disk and an explicit profile for batch 1..max_batch_size, so no shape in that range
    rebuilds the engine. TensorRT tunes its kernels for the opt shape; opt is batch 1 because that is what
    most calls run: local infer() takes one image at a time, the server warms up with batch 1 and its
    dynamic batcher forms bigger batches only under load; those still run, on kernels tuned for 1.
    """
    height, width = size_hw

    def shape(batch: int) -> str:
        return f"{input_name}:{batch}x3x{height}x{width}"

    return {
        "trt_fp16_enable": fp16,
        "trt_max_workspace_size": TENSORRT_WORKSPACE_BYTES,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engine_cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(engine_cache),
        "trt_profile_min_shapes": shape(1),
        "trt_profile_opt_shapes": shape(1),
        "trt_profile_max_shapes": shape(max_batch_size),
    }


class OnnxRuntime:
    """An ONNX file in an onnxruntime InferenceSession with the provider the runtime type names."""

    def __init__(
        self,
        path: Path,
        runtime_type: RuntimeType = RuntimeType.ONNX_CPU,
        size_hw: tuple[int, int] = (640, 640),
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        engine_cache: Path | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise _unavailable(
                runtime_type, "onnxruntime is not installed (pip install 'focoos[onnx]')"
            ) from exc
        provider = ONNX_PROVIDERS[runtime_type]
        if provider not in ort.get_available_providers():
            raise _unavailable(runtime_type, f"onnxruntime lacks {provider}")
        providers: list[Any] = [provider]
        if provider == "TensorrtExecutionProvider":
            cache = engine_cache or cache_dir() / "trt_engines"
            cache.mkdir(parents=True, exist_ok=True)
            options = tensorrt_options(
                runtime_type == RuntimeType.ONNX_TRT16, cache, NETWORK_INPUT, size_hw, max_batch_size
            )
            providers = [(provider, options), "CUDAExecutionProvider"]
        if provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")  # per-node fallback for ops the accelerator lacks
        self.session = ort.InferenceSession(str(path), providers=providers)
        if provider not in self.session.get_providers():
            raise _unavailable(runtime_type, f"{provider} failed to start (see onnxruntime's log)")
        self.runtime_type = runtime_type
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.device = "cpu" if provider == "CPUExecutionProvider" else "cuda"

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {self.input_name: images})
        return dict(zip(self.output_names, outputs, strict=True))


class TorchscriptRuntime:
    """A traced TorchScript file; outputs are named from the export's output names.

    Without `output_names`, they are read from the metadata `FocoosModel.export` stores inside the file.
    """

    def __init__(self, path: Path, output_names: list[str] | None = None, device: str = "auto") -> None:
        try:
            import torch
        except ImportError as exc:
            raise _unavailable(RuntimeType.TORCHSCRIPT_32, "torch is not installed") from exc
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise _unavailable(
                RuntimeType.TORCHSCRIPT_32, f"device {device} requested but CUDA is unavailable"
            )
        self._torch = torch
        self.device = device
        self.runtime_type = RuntimeType.TORCHSCRIPT_32
        extra = {TORCHSCRIPT_META: ""}
        self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra).eval()
        embedded = json.loads(extra[TORCHSCRIPT_META] or "{}").get("output_names")
        if not (output_names or embedded):
            raise ExportError(f"{path} does not name its outputs: export it again with FocoosModel.export")
        self.output_names = list(output_names or embedded)

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            outputs = self.module(torch.from_numpy(images).to(self.device))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {name: out.cpu().numpy() for name, out in zip(self.output_names, outputs, strict=True)}


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # Linux /proc/cpuinfo flags of CPUs that compute in bf16
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products (without them int8 still runs, slower)


def cpu_precisions() -> set[str]:
    """Precisions this CPU computes natively, read at run time: {"fp32", "int8" (VNNI/AMX), "bf16" (AVX512-BF16/AMX)}.

    OpenVINO's own view when it is installed (it is what runs bf16), else the kernel's CPU flags."""
    found = {"fp32"}
    try:
        import openvino as ov

        capabilities = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        found |= {p for p, cap in (("bf16", "BF16"), ("int8", "INT8")) if cap in capabilities}
        flags = _cpu_flags()
        if "int8" in found and flags and not any(f in flags for f in INT8_CPU_FLAGS):
            found.discard("int8")  # OpenVINO says INT8 on any AVX2 CPU; without VNNI it is emulated
        return found
    except ImportError:
        flags = _cpu_flags()
    if any(f in flags for f in BF16_CPU_FLAGS):
        found.add("bf16")
    if any(f in flags for f in INT8_CPU_FLAGS):
        found.add("int8")
    return found


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# The engine that serves each precision on the CPU: the faster of ONNX Runtime and OpenVINO on the same graph where
# their answers are equal. benchmarks/precision_engines.py (fai-detr-n-digits, 256x256, batch 1, median ms per image,
# ONNX Runtime / OpenVINO) on a 2-core AMD EPYC (AVX2, no VNNI, no bf16):
#   fp32: in-process (--iterations 200) 31.3 / 27.7 and 29.2 / 26.0 on an idle machine (OpenVINO 1.13x), 38-50 /
#         43-54 beside a busy neighbour (0.88-0.97x); served end to end (--served --iterations 200), where the step
#         shares the cores with decoding and postprocessing, 45.1 / 46.6 (0.97x; 0.97x in two more runs). Outputs
#         within 5e-6. On an AVX-512 CPU: 114 / 119 ms. ONNX Runtime: as fast where it is served, and on every target.
#   int8 (the builder's QDQ file): 48.6 / 29.6 and 59.9 / 37.1 (OpenVINO 1.6x) but not equal answers: bbox/AP 66.1
#         (ONNX Runtime) vs 64.0 (OpenVINO), fp32 74.2 (benchmarks/accuracy_per_runtime.py --val-images 200). On an
#         AVX-512 VNNI CPU both ran the same file in 62 ms (fp32 114), where int8 pays: ONNX Runtime keeps the better
#         answers at no cost there, and runs on every target (Triton's onnxruntime backend too).
#   bf16: only OpenVINO computes it on the CPU (ONNX Runtime has no bf16 CPU kernels): 70 ms against fp32 114 on an
#         AVX-512 BF16 CPU; refused on a CPU without it.
PRECISION_ENGINES = {"fp32": "onnxruntime", "int8": "onnxruntime", "bf16": "openvino"}
# OpenVINO's inference precision per precision: an int8 file (QDQ) runs its quantized ops in int8 under f32.
OPENVINO_PRECISION_HINTS = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}


def openvino_config(precision: str, threads: int = 0) -> dict[str, Any]:
    """OpenVINO's CPU compile settings, the one definition OpenVinoRuntime and the served network step share
    (threads 0: OpenVINO's default, every core)."""
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION_HINTS[precision],
                              "PERFORMANCE_HINT": "LATENCY"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class OpenVinoRuntime:
    """An ONNX file compiled by OpenVINO for the CPU at `precision` ("fp32", "bf16", or "int8": a QDQ file).

    bf16 on a CPU without native bf16 raises RuntimeUnavailableError: OpenVINO would quietly compute in fp32."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 0) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise _unavailable(RuntimeType.ONNX_CPU, "openvino is not installed (pip install 'focoos[openvino]')") \
                from exc
        if precision not in OPENVINO_PRECISION_HINTS:
            raise ValueError(f"precision must be one of {', '.join(OPENVINO_PRECISION_HINTS)}, got {precision!r}")
        if precision == "bf16" and "bf16" not in cpu_precisions():
            raise RuntimeUnavailableError(f"bf16 needs a CPU with {' or '.join(BF16_CPU_FLAGS)}; this one computes "
                                          f"{', '.join(sorted(cpu_precisions()))}")
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", openvino_config(precision, threads))
        self.request = self.compiled.create_infer_request()
        import onnx  # OpenVINO may name an output after an inner tensor: the graph's own names, in its order

        graph_outputs = [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]
        self.output_names = [next((n for n in graph_outputs if n in o.get_names()), o.get_any_name())
                             for o in self.compiled.outputs]
        self.precision = precision
        self.runtime_type = RuntimeType.ONNX_CPU
        self.device = "cpu"

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        results = self.request.infer({0: images})
        return {name: np.asarray(results[out]) for name, out in zip(self.output_names, self.compiled.outputs,
                                                                     strict=True)}


def load_runtime(
    path: Path,
    runtime_type: RuntimeType,
    output_names: list[str] | None,
    size_hw: tuple[int, int],
    device: str = "auto",
) -> OnnxRuntime | TorchscriptRuntime:
    """The runtime for an exported file; ONNX names its outputs itself, TorchScript may need `output_names`."""
    if runtime_type == RuntimeType.TORCHSCRIPT_32:
        return TorchscriptRuntime(path, output_names, device)
    return OnnxRuntime(path, runtime_type, size_hw)
