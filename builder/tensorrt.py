"""Pre-build the TensorRT engine of an ONNX_TRT16/TRT32 network step before the server loads it.

ONNX Runtime's TensorRT EP names cached engines by a hash of the graph, the shape profile, the
GPU and the ORT/TensorRT versions. Building here with the options the config passes to Triton's
onnxruntime backend fills a cache folder that, mounted at the config's `trt_engine_cache_path`,
lets the first request skip the minutes-long engine build, provided this machine's GPU model
and onnxruntime/TensorRT versions match the server's (pin them with the `tensorrt` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from focoos.errors import RuntimeUnavailableError
from focoos.infer.runtimes import tensorrt_options
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE

from .configs import StepNames, model_versions, read_config


def prebuild_engine_cache(repository: str | Path, name: str, cache_dir: str | Path) -> Path:
    """Run the latest `<name>_model` once per profile bound under TensorRT, writing engines to cache_dir.

    The session gets `tensorrt_options` for the config's precision, input and batch bound: the options the
    builder wrote into the config, with the cache moved to cache_dir.
    """
    model_dir = Path(repository) / StepNames(name).network
    config = read_config(model_dir)
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    trt = next((a for a in accelerators if a.name == "tensorrt"), None)
    if trt is None:
        raise RuntimeUnavailableError(
            f"{model_dir.name} has no TensorRT accelerator: build it with onnx_trt16/onnx_trt32"
        )
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise RuntimeUnavailableError("pre-building engines needs the `tensorrt` extra (onnxruntime-gpu)") from exc
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        raise RuntimeUnavailableError(
            "onnxruntime lacks TensorrtExecutionProvider here (needs a GPU machine with onnxruntime-gpu + TensorRT); "
            f"available: {', '.join(ort.get_available_providers())}"
        )
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    channels_hw = [int(d) for d in config.input[0].dims]
    options = tensorrt_options(trt.parameters.get("precision_mode") == "FP16", cache, config.input[0].name,
                               (channels_hw[1], channels_hw[2]), config.max_batch_size)
    version = model_versions(model_dir)[-1]
    session = ort.InferenceSession(str(model_dir / str(version) / config.default_model_filename),
                                   providers=[("TensorrtExecutionProvider", options), "CPUExecutionProvider"])
    if "TensorrtExecutionProvider" not in session.get_providers():
        raise RuntimeUnavailableError("TensorrtExecutionProvider failed to start (see onnxruntime's log)")
    input_name = session.get_inputs()[0].name
    for batch in sorted({1, config.max_batch_size}):
        session.run(None, {input_name: np.zeros((batch, *channels_hw), dtype=NETWORK_INPUT_DTYPE)})
    return cache
