"""Triton model configurations for the four models of a served FocoosModel, as ModelConfig protobufs.

Building the protobuf (not text) means every config is checked by Triton's own schema before it
is written; `to_pbtxt` round-trips it through text_format once more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from focoos.ports import ModelInfo, RuntimeType, Task
from focoos.processing.postprocess import postprocess_options
from focoos.processing.preprocess import NETWORK_INPUT_DTYPE
from focoos.processing.transport import (
    BOX_TASKS,
    BOXES,
    CLASSES,
    IMAGE,
    IMAGE_SHAPE,
    MASK_TASKS,
    MASKS,
    NETWORK_INPUT,
    NUM_DETECTIONS,
    ORIGINAL_HW,
    SCORES,
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
TARGETS = ("gpu", "cpu", "embedded")
DEFAULT_ENGINE_CACHE = "/engine_cache"


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


def network_tensors(runtime_type: RuntimeType, output_names: list[str]) -> tuple[str, list[str]]:
    """Tensor names of the network step: ONNX keeps the graph's, libtorch needs INPUT__i / OUTPUT__i."""
    if runtime_type == RuntimeType.TORCHSCRIPT_32:
        return "INPUT__0", [f"OUTPUT__{i}" for i in range(len(output_names))]
    return NETWORK_INPUT, list(output_names)


def output_dims(info: ModelInfo, name: str) -> list[int]:
    """Per-item dims of a raw network output (batch excluded)."""
    if info.task == Task.DETECTION:
        queries = int(info.config.get("num_queries", 300))
        return {"boxes": [queries, 4], "logits": [queries, info.num_classes]}[name]
    if info.task.value in MASK_TASKS:  # masks at 1/4 of the input; -1 leaves the rounding to the network
        queries = int(info.config.get("num_queries", 100))
        return {"logits": [queries, info.num_classes], "masks": [queries, -1, -1]}[name]
    return [info.num_classes]


def _tensor(name: str, dtype: int, dims: list[int], optional: bool = False) -> dict:
    return {"name": name, "data_type": dtype, "dims": dims, **({"optional": True} if optional else {})}


def _params(values: dict[str, object]) -> dict[str, mc.ModelParameter]:
    return {k: mc.ModelParameter(string_value=v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()}


def _ensemble_io(info: ModelInfo, top_k: int) -> tuple[list, list]:
    inputs = [_tensor(IMAGE, mc.TYPE_UINT8, [-1]), _tensor(IMAGE_SHAPE, mc.TYPE_INT32, [3], optional=True)]
    outputs = [_tensor(NUM_DETECTIONS, mc.TYPE_INT32, [1])]
    if info.task.value in BOX_TASKS:
        outputs.append(_tensor(BOXES, mc.TYPE_FP32, [top_k, 4]))
    outputs += [_tensor(SCORES, mc.TYPE_FP32, [top_k]), _tensor(CLASSES, mc.TYPE_INT32, [top_k])]
    if info.task.value in MASK_TASKS:
        outputs.append(_tensor(MASKS, mc.TYPE_STRING, [top_k]))
    return inputs, outputs


def python_instances(count: int) -> list[mc.ModelInstanceGroup]:
    return [mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=count)]


def preprocess_config(names: StepNames, info: ModelInfo, max_batch_size: int, instances: int) -> mc.ModelConfig:
    inputs, _ = _ensemble_io(info, 1)
    height, width = info.input_hw
    return mc.ModelConfig(
        name=names.preprocess,
        backend="python",
        max_batch_size=max_batch_size,
        input=[mc.ModelInput(**t) for t in inputs],
        output=[
            mc.ModelOutput(**_tensor(NETWORK_INPUT, NETWORK_INPUT_TYPE, [3, height, width])),
            mc.ModelOutput(**_tensor(ORIGINAL_HW, mc.TYPE_INT32, [2])),
        ],
        instance_group=python_instances(instances),
        parameters=_params({"input_hw": [height, width]}),
    )


def postprocess_config(
    names: StepNames, info: ModelInfo, output_names: list[str], max_batch_size: int, instances: int, top_k: int,
    threshold: float,
) -> mc.ModelConfig:
    _, outputs = _ensemble_io(info, top_k)
    inputs = [_tensor(n, mc.TYPE_FP32, output_dims(info, n)) for n in output_names]
    inputs.append(_tensor(ORIGINAL_HW, mc.TYPE_INT32, [2]))
    return mc.ModelConfig(
        name=names.postprocess,
        backend="python",
        max_batch_size=max_batch_size,
        input=[mc.ModelInput(**t) for t in inputs],
        output=[mc.ModelOutput(**t) for t in outputs],
        instance_group=python_instances(instances),
        parameters=_params({
            "task": info.task.value, "top_k": top_k, "threshold": threshold,
            "postprocess_options": postprocess_options(info.config),
        }),
    )


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
    threads: int = 1,
) -> mc.ModelConfig:
    """The network step for the runtime; target 'embedded' runs the same file in a Python-backend model."""
    height, width = info.input_hw
    input_name, outputs = network_tensors(runtime_type, output_names)
    config = mc.ModelConfig(
        name=names.network,
        max_batch_size=max_batch_size,
        input=[mc.ModelInput(**_tensor(input_name, NETWORK_INPUT_TYPE, [3, height, width]))],
        output=[
            mc.ModelOutput(**_tensor(o, mc.TYPE_FP32, output_dims(info, n)))
            for o, n in zip(outputs, output_names, strict=True)
        ],
        dynamic_batching=mc.ModelDynamicBatching(
            preferred_batch_size=sorted({b for b in (1, 2, 4, 8, max_batch_size) if b <= max_batch_size}),
            max_queue_delay_microseconds=500,
        ),
        model_warmup=[
            mc.ModelWarmup(
                name="random_sample",
                batch_size=1,
                inputs={input_name: mc.ModelWarmup.Input(data_type=NETWORK_INPUT_TYPE, dims=[3, height, width],
                                                         random_data=True)},
            )
        ],
    )
    gpu = target == "gpu" and runtime_type not in (RuntimeType.ONNX_CPU,)
    kind = mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
    config.instance_group.append(mc.ModelInstanceGroup(kind=kind, count=instances))
    if target == "embedded":
        config.backend = "python"
        params = {"model_file": model_file, "runtime_type": runtime_type.value, "intra_op_threads": str(threads)}
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


def tensorrt_accelerator(
    name: str, runtime_type: RuntimeType, input_name: str, size_hw: tuple[int, int], max_batch_size: int,
    engine_cache_dir: str,
) -> mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator:
    """TensorRT through onnxruntime: FP16/FP32, a persistent engine cache, shape profiles for batch 1..max."""
    height, width = size_hw
    cache = f"{engine_cache_dir.rstrip('/')}/{name}"
    parameters = {
        "precision_mode": "FP16" if runtime_type == RuntimeType.ONNX_TRT16 else "FP32",
        "max_workspace_size_bytes": str(2 << 30),
        "trt_engine_cache_enable": "true",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "true",
        "trt_timing_cache_path": cache,
        "trt_profile_min_shapes": f"{input_name}:1x3x{height}x{width}",
        "trt_profile_opt_shapes": f"{input_name}:{max(1, max_batch_size // 2)}x3x{height}x{width}",
        "trt_profile_max_shapes": f"{input_name}:{max_batch_size}x3x{height}x{width}",
    }
    unknown = set(parameters) - TENSORRT_PARAMETER_KEYS
    assert not unknown, f"TensorRT keys the onnxruntime backend rejects: {unknown}"
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
            output_map={NETWORK_INPUT: "preprocessed", ORIGINAL_HW: "original_hw"},
        ),
        mc.ModelEnsembling.Step(
            model_name=names.network, model_version=-1,
            input_map={net_in: "preprocessed"},
            output_map={o: f"raw_{n}" for o, n in zip(net_outs, output_names, strict=True)},
        ),
        mc.ModelEnsembling.Step(
            model_name=names.postprocess, model_version=-1,
            input_map={**{n: f"raw_{n}" for n in output_names}, ORIGINAL_HW: "original_hw"},
            output_map={t["name"]: t["name"] for t in outputs},
        ),
    ]
    return mc.ModelConfig(
        name=names.ensemble,
        platform="ensemble",
        max_batch_size=max_batch_size,
        input=[mc.ModelInput(**t) for t in inputs],
        output=[mc.ModelOutput(**t) for t in outputs],
        ensemble_scheduling=mc.ModelEnsembling(step=steps),
        parameters=_params(metadata),
    )


def to_pbtxt(config: mc.ModelConfig) -> str:
    """Serialise, then parse back with Triton's schema: what we write is what the server reads."""
    text = text_format.MessageToString(config)
    parsed = text_format.Parse(text, mc.ModelConfig())
    if parsed != config:
        raise ValueError(f"config of {config.name} does not survive a text round trip")
    return text


def parse_pbtxt(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())
