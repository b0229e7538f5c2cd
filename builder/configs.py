"""Triton model configurations for the four models of a served FocoosModel, as ModelConfig protobufs.

Building the protobuf (not text) means every config is checked by Triton's own schema before it
is written; `to_pbtxt` round-trips it through text_format once more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from focoos.infer.runtimes import PRECISION_ENGINES, openvino_config, tensorrt_options
from focoos.models.family import family_spec
from focoos.ports import ModelInfo, RuntimeType
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE
from focoos.processing.transport import (
    ADMISSION,
    BOXES,
    CLASSES,
    IMAGE,
    IMAGE_SHAPE,
    KEYPOINTS,
    MASKS,
    NETWORK_INPUT,
    NUM_DETECTIONS,
    ORIGINAL_HW,
    PARAM_ADMISSION_MAX_LEASE_S,
    PARAM_MAX_IN_FLIGHT,
    PARAM_NATIVE_MAX_PIXELS,
    PARAM_REDUCED_DECODE,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    SCORES,
    task_outputs,
)

NETWORK_INPUT_TYPE = {"float32": mc.TYPE_FP32, "uint8": mc.TYPE_UINT8}[np.dtype(NETWORK_INPUT_DTYPE).name]

# Keys the onnxruntime backend accepts for its TensorRT accelerator (it rejects others only at load time).
TENSORRT_PARAMETER_KEYS = frozenset(
    {
        "precision_mode",
        "max_workspace_size_bytes",
        "trt_max_partition_iterations",
        "trt_min_subgraph_size",
        "trt_engine_cache_enable",
        "trt_engine_cache_path",
        "trt_timing_cache_enable",
        "trt_timing_cache_path",
        "trt_layer_norm_fp32_fallback",
        "trt_build_heuristics_enable",
        "trt_builder_optimization_level",
        "trt_profile_min_shapes",
        "trt_profile_opt_shapes",
        "trt_profile_max_shapes",
        "trt_cuda_graph_enable",
    }
)
# What each target can run. 'cpu' and 'embedded' run the network on CPU instances, so a GPU runtime there would
# be a label for something that does not happen: it is refused. The first is the target's default.
TARGET_RUNTIMES = {
    "gpu": (RuntimeType.ONNX_TRT16, RuntimeType.ONNX_TRT32, RuntimeType.ONNX_CUDA32, RuntimeType.ONNX_CPU,
            RuntimeType.TORCHSCRIPT_32),
    "cpu": (RuntimeType.ONNX_CPU, RuntimeType.TORCHSCRIPT_32),
    "embedded": (RuntimeType.ONNX_CPU, RuntimeType.TORCHSCRIPT_32, RuntimeType.ONNX_TRT16, RuntimeType.ONNX_TRT32,
                 RuntimeType.ONNX_CUDA32),  # the python backend runs ONNX Runtime's GPU providers too
}
TARGETS = tuple(TARGET_RUNTIMES)
GPU_RUNTIMES = (RuntimeType.ONNX_TRT16, RuntimeType.ONNX_TRT32, RuntimeType.ONNX_CUDA32)
CONFIG_FILE = "config.pbtxt"
VERSION_CONFIG_FILE = "focoos_config.pbtxt"  # each version's own copy of its config, for rollbacks
ACCURACY_FILE = "accuracy.json"  # a passed accuracy check, in the ensemble's version folder
DEFAULT_ENGINE_CACHE = "/engine_cache"
DEFAULT_MAX_QUEUE_SIZE = 64  # requests the network step queues before the server refuses more
DEFAULT_ADMISSION_MAX_LEASE_S = 30.0  # the longest a request that never reaches the postprocess step holds a slot


def default_max_in_flight(max_batch_size: int, network_instances: int, python_instances: int) -> int:
    """Requests admitted into an ensemble at once: two full batches per network instance (one running, one
    queued behind it) and one per preprocess/postprocess instance. Enough to keep the network busy; past it,
    an admitted request would only wait longer, so the preprocess step refuses it before decoding."""
    return 2 * max_batch_size * network_instances + python_instances


@dataclass(frozen=True)
class Admission:
    """Admission control of one ensemble (see python_models/admission.py); max_in_flight 0: no limit."""

    max_in_flight: int
    max_lease_s: float = DEFAULT_ADMISSION_MAX_LEASE_S

    def parameters(self) -> dict[str, object]:
        return {PARAM_MAX_IN_FLIGHT: self.max_in_flight, PARAM_ADMISSION_MAX_LEASE_S: self.max_lease_s}


@dataclass(frozen=True)
class StepNames:
    """The four model names of one served model."""

    ensemble: str

    @property
    def preprocess(self) -> str:
        return f"{self.ensemble}_preprocess"

    @property
    def network(self) -> str:
        return f"{self.ensemble}_model"

    @property
    def postprocess(self) -> str:
        return f"{self.ensemble}_postprocess"

    @property
    def all(self) -> tuple[str, str, str, str]:
        return self.ensemble, self.preprocess, self.network, self.postprocess


def target_runtime(target: str, runtime_type: RuntimeType | str | None = None) -> RuntimeType:
    """The runtime a build for `target` uses: `runtime_type`, or the target's default when None.

    ValueError when the target cannot run it (the message uses the values both the API and the CLI take)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    runtimes = TARGET_RUNTIMES[target]
    if runtime_type is None:
        return runtimes[0]
    runtime_type = RuntimeType(runtime_type)
    if runtime_type not in runtimes:
        where = {"embedded": " in the python backend on the CPU", "cpu": " on CPU instances"}.get(target, "")
        raise ValueError(f"target {target} runs the network{where} with {', '.join(r.value for r in runtimes)}, "
                         f"not {runtime_type.value}")
    return runtime_type


def network_engine(runtime_type: RuntimeType, precision: str = "fp32", target: str = "embedded") -> str:
    """What computes the network: libtorch for TorchScript, else the precision's engine (PRECISION_ENGINES:
    onnxruntime with the runtime type's provider, or openvino). ValueError where the target cannot run it:
    openvino runs only in the embedded target's python step."""
    engine = "libtorch" if runtime_type == RuntimeType.TORCHSCRIPT_32 else PRECISION_ENGINES[precision]
    if engine == "openvino" and target != "embedded":
        raise ValueError(f"precision {precision} is served by openvino, which runs only in the python backend of "
                         f"target embedded: target {target} runs Triton's onnxruntime backend, which cannot")
    return engine


def network_tensors(runtime_type: RuntimeType, output_names: list[str]) -> tuple[str, list[str]]:
    """Tensor names of the network step: ONNX keeps the graph's, libtorch needs INPUT__i / OUTPUT__i."""
    if runtime_type == RuntimeType.TORCHSCRIPT_32:
        return "INPUT__0", [f"OUTPUT__{i}" for i in range(len(output_names))]
    return NETWORK_INPUT, list(output_names)


def output_dims(info: ModelInfo, name: str) -> list[int]:
    """Per-item dims of a raw network output (batch excluded), as the model's family declares them."""
    return family_spec(info.model_family).outputs(info)[name]


def _tensor(name: str, dtype: int, dims: list[int], optional: bool = False) -> dict:
    return {"name": name, "data_type": dtype, "dims": dims, **({"optional": True} if optional else {})}


def _params(values: dict[str, object]) -> dict[str, mc.ModelParameter]:
    return {k: mc.ModelParameter(string_value=v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()}


def _ensemble_io(info: ModelInfo, top_k: int) -> tuple[list, list]:
    inputs = [_tensor(IMAGE, mc.TYPE_UINT8, [-1]), _tensor(IMAGE_SHAPE, mc.TYPE_INT32, [3], optional=True)]
    specs = {
        NUM_DETECTIONS: (mc.TYPE_INT32, [1]),
        BOXES: (mc.TYPE_FP32, [top_k, 4]),
        SCORES: (mc.TYPE_FP32, [top_k]),
        CLASSES: (mc.TYPE_INT32, [top_k]),
        MASKS: (mc.TYPE_STRING, [top_k]),
        KEYPOINTS: (mc.TYPE_FP32, [top_k, -1, 3]),
    }
    return inputs, [_tensor(name, *specs[name]) for name in task_outputs(info.task.value)]


def _model(name: str, max_batch_size: int, inputs: list[dict], outputs: list[dict], **fields: object) -> mc.ModelConfig:
    return mc.ModelConfig(
        name=name,
        max_batch_size=max_batch_size,
        input=[mc.ModelInput(**t) for t in inputs],
        output=[mc.ModelOutput(**t) for t in outputs],
        **fields,
    )


def _python_step(
    name: str, max_batch_size: int, inputs: list[dict], outputs: list[dict], instances: int, parameters: dict
) -> mc.ModelConfig:
    return _model(name, max_batch_size, inputs, outputs, backend="python", instance_group=python_instances(instances),
                  parameters=_params(parameters))


def python_instances(count: int) -> list[mc.ModelInstanceGroup]:
    return [mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=count)]


def queue_policy(max_queue_size: int, queue_timeout_ms: int) -> mc.ModelQueuePolicy:
    """Past `max_queue_size` queued requests, or `queue_timeout_ms` in the queue, a request is refused at once
    (0: no limit): an overloaded server answers busy instead of letting every caller's latency grow."""
    return mc.ModelQueuePolicy(max_queue_size=max_queue_size, timeout_action=mc.ModelQueuePolicy.REJECT,
                               default_timeout_microseconds=queue_timeout_ms * 1000)


# A family that runs eager inference at the image's own size (FamilySpec.native_size) is served so too, up to
# four times the model's input area or a megapixel, whichever is more (larger images are scaled down to it: the
# bound on what one request may cost the server).
NATIVE_MAX_AREA_FACTOR = 4
NATIVE_MIN_MAX_PIXELS = 1 << 20


def native_max_pixels(info: ModelInfo, runtime_type: RuntimeType) -> int:
    """The most pixels an image of this model runs at when served at its own size; 0: served at im_size
    (families with a fixed input, and TensorRT, whose engines are built for the model's input size)."""
    if not family_spec(info.model_family).native_size or runtime_type in (RuntimeType.ONNX_TRT16,
                                                                          RuntimeType.ONNX_TRT32):
        return 0
    height, width = info.input_hw
    return max(NATIVE_MAX_AREA_FACTOR * height * width, NATIVE_MIN_MAX_PIXELS)


def network_input_dims(info: ModelInfo, native: bool) -> list[int]:
    """[3, H, W] of the model's input, or [3, -1, -1] when images run at their own size."""
    return [3, -1, -1] if native else [3, *info.input_hw]


def preprocess_config(
    names: StepNames, info: ModelInfo, max_batch_size: int, instances: int, admission: Admission,
    reduced_decode: bool = True, max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE, queue_timeout_ms: int = 0,
    native_pixels: int = 0,
) -> mc.ModelConfig:
    """The first step: its admission gate and queue limits refuse a call before any work is spent on it.
    native_pixels > 0: each image runs at its own size, up to that many pixels (native_max_pixels)."""
    inputs, _ = _ensemble_io(info, 1)
    height, width = info.input_hw
    outputs = [_tensor(NETWORK_INPUT, NETWORK_INPUT_TYPE, network_input_dims(info, native_pixels > 0)),
               _tensor(ORIGINAL_HW, mc.TYPE_INT32, [2]), _tensor(ADMISSION, mc.TYPE_INT64, [2])]
    parameters = {"input_hw": [height, width], PARAM_REDUCED_DECODE: reduced_decode,
                  PARAM_NATIVE_MAX_PIXELS: native_pixels, **admission.parameters()}
    config = _python_step(names.preprocess, max_batch_size, inputs, outputs, instances, parameters)
    config.dynamic_batching.CopyFrom(
        mc.ModelDynamicBatching(default_queue_policy=queue_policy(max_queue_size, queue_timeout_ms)))
    return config


def postprocess_config(
    names: StepNames, info: ModelInfo, output_names: list[str], max_batch_size: int, instances: int, top_k: int,
    threshold: float, admission: Admission,
) -> mc.ModelConfig:
    """The last step: it gives back the request's admission slot (optional input: a direct caller has none)."""
    _, outputs = _ensemble_io(info, top_k)
    inputs = [_tensor(n, mc.TYPE_FP32, output_dims(info, n)) for n in output_names]
    inputs.append(_tensor(ORIGINAL_HW, mc.TYPE_INT32, [2]))
    inputs.append(_tensor(ADMISSION, mc.TYPE_INT64, [2], optional=True))
    options = family_spec(info.model_family).postprocess_options(info)
    parameters = {"task": info.task.value, PARAM_TOP_K: top_k, PARAM_THRESHOLD: threshold,
                  "postprocess_options": options, **admission.parameters()}
    return _python_step(names.postprocess, max_batch_size, inputs, outputs, instances, parameters)


def network_config(
    names: StepNames,
    info: ModelInfo,
    runtime_type: RuntimeType,
    target: str,
    output_names: list[str],
    model_file: str,
    max_batch_size: int,
    instances: int,
    engine_cache_dir: str = DEFAULT_ENGINE_CACHE,
    threads: int = 0,
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
    queue_timeout_ms: int = 0,
    native: bool = False,
    precision: str = "fp32",
) -> mc.ModelConfig:
    """The network step for the runtime; target 'embedded' runs the same file in a Python-backend model
    (`threads` intra-op threads per instance, 0: the serving machine's cores). Its queue is where calls
    wait when the network is the bottleneck, so it has the same queue limits as the first step.
    native: images run at their own size (the dynamic batcher groups requests of one size).
    precision: the file's number format; its engine (network_engine) is written for the embedded step."""
    engine = network_engine(runtime_type, precision, target)
    height, width = info.input_hw
    input_name, outputs = network_tensors(runtime_type, output_names)
    config = _model(
        names.network,
        max_batch_size,
        [_tensor(input_name, NETWORK_INPUT_TYPE, network_input_dims(info, native))],
        [_tensor(o, mc.TYPE_FP32, output_dims(info, n)) for o, n in zip(outputs, output_names, strict=True)],
        dynamic_batching=mc.ModelDynamicBatching(
            preferred_batch_size=sorted({b for b in (1, 2, 4, 8, max_batch_size) if b <= max_batch_size}),
            max_queue_delay_microseconds=500,
            default_queue_policy=queue_policy(max_queue_size, queue_timeout_ms),
        ),
        model_warmup=[
            mc.ModelWarmup(
                name="random_sample",
                batch_size=1,
                inputs={input_name: mc.ModelWarmup.Input(data_type=NETWORK_INPUT_TYPE, dims=[3, height, width],
                                                         zero_data=True)},  # random FP32 bits hold NaN
            )
        ],
    )
    gpu = target in ("gpu", "embedded") and runtime_type in GPU_RUNTIMES
    kind = mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
    if target == "gpu" and runtime_type == RuntimeType.TORCHSCRIPT_32:
        kind = mc.ModelInstanceGroup.KIND_GPU
    elif target == "embedded" and runtime_type == RuntimeType.TORCHSCRIPT_32:
        kind = mc.ModelInstanceGroup.KIND_AUTO  # Triton's GPU where there is one, else the CPU
    config.instance_group.append(mc.ModelInstanceGroup(kind=kind, count=instances))
    if target == "embedded":
        config.backend = "python"
        params = {"model_file": model_file, "runtime_type": runtime_type.value, "intra_op_threads": str(threads),
                  "engine": engine}
        if engine == "openvino":
            params["openvino_config"] = openvino_config(precision, threads)
        if runtime_type in (RuntimeType.ONNX_TRT16, RuntimeType.ONNX_TRT32):  # the cache goes in the version folder
            params["tensorrt_options"] = tensorrt_options(runtime_type == RuntimeType.ONNX_TRT16, "", input_name,
                                                          (height, width), max_batch_size)
        for key, value in _params(params).items():
            config.parameters[key].CopyFrom(value)
        return config
    config.default_model_filename = model_file
    if runtime_type == RuntimeType.TORCHSCRIPT_32:
        config.backend = "pytorch"
        return config
    config.backend = "onnxruntime"
    if runtime_type in (RuntimeType.ONNX_TRT16, RuntimeType.ONNX_TRT32):
        config.optimization.execution_accelerators.gpu_execution_accelerator.append(
            tensorrt_accelerator(names.ensemble, runtime_type, input_name, (height, width), max_batch_size,
                                 engine_cache_dir)
        )
    return config


# ONNX Runtime's TensorRT EP option -> the onnxruntime backend's accelerator parameter; others keep their name.
TENSORRT_BACKEND_KEYS = {"trt_fp16_enable": "precision_mode", "trt_max_workspace_size": "max_workspace_size_bytes"}


def _backend_value(key: str, value: object) -> str:
    if key == "trt_fp16_enable":
        return "FP16" if value else "FP32"
    return str(value).lower() if isinstance(value, bool) else str(value)


def tensorrt_accelerator(
    name: str, runtime_type: RuntimeType, input_name: str, size_hw: tuple[int, int], max_batch_size: int,
    engine_cache_dir: str,
) -> mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator:
    """TensorRT through onnxruntime with `tensorrt_options` (the local runtime's), under the backend's key names."""
    options = tensorrt_options(runtime_type == RuntimeType.ONNX_TRT16, f"{engine_cache_dir.rstrip('/')}/{name}",
                               input_name, size_hw, max_batch_size)
    parameters = {TENSORRT_BACKEND_KEYS.get(k, k): _backend_value(k, v) for k, v in options.items()}
    unknown = set(parameters) - TENSORRT_PARAMETER_KEYS
    if unknown:
        raise ValueError(f"TensorRT keys the onnxruntime backend rejects: {sorted(unknown)}")
    return mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator(name="tensorrt", parameters=parameters)


def ensemble_config(
    names: StepNames, info: ModelInfo, runtime_type: RuntimeType, output_names: list[str], max_batch_size: int,
    top_k: int, metadata: dict[str, object],
) -> mc.ModelConfig:
    """The only model clients call: preprocess -> network -> postprocess, metadata in `parameters`."""
    inputs, outputs = _ensemble_io(info, top_k)
    net_in, net_outs = network_tensors(runtime_type, output_names)
    steps = [
        mc.ModelEnsembling.Step(
            model_name=names.preprocess, model_version=-1,
            input_map={IMAGE: IMAGE, IMAGE_SHAPE: IMAGE_SHAPE},
            output_map={NETWORK_INPUT: "preprocessed", ORIGINAL_HW: "original_hw", ADMISSION: "admission"},
        ),
        mc.ModelEnsembling.Step(
            model_name=names.network, model_version=-1,
            input_map={net_in: "preprocessed"},
            output_map={o: f"raw_{n}" for o, n in zip(net_outs, output_names, strict=True)},
        ),
        mc.ModelEnsembling.Step(
            model_name=names.postprocess, model_version=-1,
            input_map={**{n: f"raw_{n}" for n in output_names}, ORIGINAL_HW: "original_hw", ADMISSION: "admission"},
            output_map={t["name"]: t["name"] for t in outputs},
        ),
    ]
    return _model(names.ensemble, max_batch_size, inputs, outputs, platform="ensemble",
                  ensemble_scheduling=mc.ModelEnsembling(step=steps), parameters=_params(metadata))


def to_pbtxt(config: mc.ModelConfig) -> str:
    """Serialise, then parse back with Triton's schema: what we write is what the server reads."""
    text = text_format.MessageToString(config)
    parsed = text_format.Parse(text, mc.ModelConfig())
    if parsed != config:
        raise ValueError(f"config of {config.name} does not survive a text round trip")
    return text


def parse_pbtxt(text: str) -> mc.ModelConfig:
    """A config.pbtxt's text as Triton's ModelConfig (ParseError when it does not fit the schema)."""
    return text_format.Parse(text, mc.ModelConfig())


def read_config(model_dir: Path) -> mc.ModelConfig:
    """The config.pbtxt of a model folder in a repository."""
    return parse_pbtxt((model_dir / CONFIG_FILE).read_text())


def model_versions(model_dir: Path) -> list[int]:
    """The numbered version folders of a model in a repository, oldest first ([] when there is no model)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
