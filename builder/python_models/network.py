"""Network step for servers with only the python backend: runs the exported ONNX or TorchScript file.

The runtime type in the config chooses where it runs: onnx_cpu on ONNX Runtime's CPU provider; onnx_cuda32 on its CUDA
provider; onnx_trt16 / onnx_trt32 on its TensorRT provider (FP16 / FP32) with the engine cache in this version's folder;
torchscript_32 on the instance's GPU when Triton gives it one (instance kind GPU), else on the CPU. onnx_cpu with the
config's engine `openvino` runs on OpenVINO's CPU plugin instead, compiled with the config's `openvino_config` (the
builder's focoos.infer.runtimes.openvino_config: bf16 is served so). A provider or engine that does not start, or
OpenVINO computing another precision than the one asked, fails the load with the reason: nothing falls back to a
slower device or precision unannounced.

Requests the dynamic batcher groups are concatenated into one batch, run once, and split back. Each request is
checked on its own first (shape, dtype, finite pixels: a caller may reach this step directly), so a bad one gets
its own INVALID_ARG error and the others of its batch are still served.
"""

import json
import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_triton_step import StageMetrics, config_parameters, invalid_argument  # noqa: E402

# runtime type -> ONNX Runtime's provider (the same table as focoos.infer.runtimes.ONNX_PROVIDERS)
PROVIDERS = {"onnx_cpu": "CPUExecutionProvider", "onnx_cuda32": "CUDAExecutionProvider",
             "onnx_trt32": "TensorrtExecutionProvider", "onnx_trt16": "TensorrtExecutionProvider"}
ENGINES = ("onnxruntime", "openvino", "libtorch")  # focoos.builder.configs.network_engine's values
ENGINE_CACHE = "trt_cache"  # beside model.onnx in the version folder: a new version never reuses an old engine


def onnx_session(path, runtime_type, threads, device_id, folder, tensorrt_options):
    """An InferenceSession on the runtime type's provider; RuntimeError when that provider does not start."""
    import onnxruntime as ort

    if runtime_type not in PROVIDERS:
        raise RuntimeError(f"unknown runtime type {runtime_type!r}: one of {', '.join(PROVIDERS)}")
    provider = PROVIDERS[runtime_type]
    if provider not in ort.get_available_providers():
        raise RuntimeError(f"{runtime_type} needs {provider}, which this onnxruntime lacks (it has "
                           f"{', '.join(ort.get_available_providers())}): install onnxruntime-gpu (and tensorrt)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle intra-op threads sleep instead of spinning: the decode and postprocess steps share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    cuda = ("CUDAExecutionProvider", {"device_id": device_id})
    if provider == "TensorrtExecutionProvider":
        cache = os.path.join(folder, ENGINE_CACHE)
        os.makedirs(cache, exist_ok=True)
        trt = {**tensorrt_options, "device_id": device_id, "trt_fp16_enable": runtime_type == "onnx_trt16",
               "trt_engine_cache_path": cache, "trt_timing_cache_path": cache}
        providers = [(provider, trt), cuda, "CPUExecutionProvider"]
    elif provider == "CUDAExecutionProvider":
        providers = [cuda, "CPUExecutionProvider"]  # CPU: per-node fallback for ops CUDA lacks
    else:
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(path, options, providers=providers)
    if provider not in session.get_providers():
        raise RuntimeError(f"{provider} failed to start for {path} (see onnxruntime's log)")
    return session


def openvino_model(path, config, output_names):
    """The file compiled by OpenVINO for the CPU with `config`, and its output ports in the order of `output_names`;
    RuntimeError when openvino is missing or would compute another precision than the config's hint."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise RuntimeError(f"engine openvino needs the openvino package in the server's Python ({sys.executable}): "
                           "pip install 'focoos[openvino]'") from exc
    core = ov.Core()
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    asked, got = config["INFERENCE_PRECISION_HINT"], compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    if got != asked:  # OpenVINO takes a bf16 hint on any CPU and computes f32 where the CPU lacks bf16
        raise RuntimeError(f"OpenVINO computes {got}, not {asked}, on this CPU (it offers "
                           f"{', '.join(core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}): bf16 needs a CPU "
                           "with avx512_bf16 or amx_bf16")
    # OpenVINO may name an output after an inner tensor (a port carries several names): find each by its own name
    ports = {name: port for port in compiled.outputs for name in port.get_names()}
    missing = [name for name in output_names if name not in ports]
    if missing:
        raise RuntimeError(f"{path} has no output {', '.join(missing)} (OpenVINO sees {sorted(ports)})")
    return compiled, [ports[name] for name in output_names]


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config_parameters(args)
        self.input_name = config["input"][0]["name"]
        self.input_dims = tuple(int(d) for d in config["input"][0]["dims"])
        self.output_names = [output["name"] for output in config["output"]]
        folder = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(folder, params["model_file"])
        threads = int(params.get("intra_op_threads", "0"))  # 0: the runtime's default, every core
        gpu = args.get("model_instance_kind", "CPU") == "GPU"
        device_id = int(args.get("model_instance_device_id", "0") or 0)
        runtime_type = params["runtime_type"]
        engine = params.get("engine", "onnxruntime")
        if engine not in ENGINES:
            raise RuntimeError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
        if engine == "openvino":
            if runtime_type != "onnx_cpu":
                raise RuntimeError(f"engine openvino runs onnx_cpu on the CPU, not {runtime_type}")
            compiled, self.ports = openvino_model(path, json.loads(params["openvino_config"]), self.output_names)
            self.request = compiled.create_infer_request()
            self.device = "cpu"
            self.run = self._run_openvino
        elif runtime_type == "torchscript_32":
            import torch

            if threads > 0:
                torch.set_num_threads(threads)
            if gpu and not torch.cuda.is_available():
                raise RuntimeError(f"{args['model_name']}: a GPU instance, but torch {torch.__version__} sees no CUDA")
            self.device = f"cuda:{device_id}" if gpu else "cpu"
            self._torch = torch
            self.module = torch.jit.load(path, map_location=self.device).eval()
            self.run = self._run_torchscript
        else:
            self.session = onnx_session(path, runtime_type, threads, device_id, folder,
                                        json.loads(params.get("tensorrt_options", "{}")))
            self.device = f"cuda:{device_id}" if runtime_type != "onnx_cpu" else "cpu"
            self.run = self._run_onnx
        self.metrics = StageMetrics(args["model_name"], "network")

    def _run_onnx(self, batch):
        return self.session.run(None, {self.session.get_inputs()[0].name: batch})

    def _run_openvino(self, batch):
        results = self.request.infer({0: batch})
        return [results[port] for port in self.ports]

    def _run_torchscript(self, batch):
        with self._torch.inference_mode():
            outputs = self.module(self._torch.from_numpy(batch).to(self.device))
        outputs = (outputs,) if isinstance(outputs, self._torch.Tensor) else outputs
        return [out.cpu().numpy() for out in outputs]

    def _problem(self, batch):
        """Why a request's input cannot be run, or None."""
        if batch.dtype != np.float32 or batch.ndim != 1 + len(self.input_dims) or batch.shape[0] < 1 \
                or any(d not in (-1, got) or got < 1 for d, got in zip(self.input_dims, batch.shape[1:], strict=True)):
            return (f"{self.input_name} must be FP32 [batch >= 1, {', '.join(map(str, self.input_dims))}], "
                    f"got {batch.dtype} {list(batch.shape)}")
        if not np.isfinite(batch).all():
            return f"{self.input_name} holds NaN or infinite values"
        return None

    def _run_each(self, batches):
        """Outputs per batch, run together; if that fails, one by one so only the failing batch gets the error."""
        try:
            outputs = self.run(np.concatenate(batches) if len(batches) > 1 else batches[0])
        except Exception as exc:  # noqa: BLE001 - the runtime's error becomes that request's response
            if len(batches) == 1:
                return [exc]
            return [self._run_each([batch])[0] for batch in batches]
        split, offset = [], 0
        for batch in batches:
            end = offset + batch.shape[0]
            split.append([np.ascontiguousarray(out[offset:end]).astype(np.float32) for out in outputs])
            offset = end
        return split

    def execute(self, requests):
        start = time.perf_counter()
        responses, good, batches = [None] * len(requests), [], []
        for i, request in enumerate(requests):
            batch = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            problem = self._problem(batch)
            if problem is None:
                good.append(i)
                batches.append(batch)
            else:
                responses[i] = invalid_argument(problem)
        for i, outputs in zip(good, self._run_each(batches) if batches else [], strict=True):
            if isinstance(outputs, Exception):
                responses[i] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"the network failed on this request: {outputs}"))
            else:
                responses[i] = pb_utils.InferenceResponse(
                    [pb_utils.Tensor(name, out) for name, out in zip(self.output_names, outputs, strict=True)])
        self.metrics.observe(start, len(requests))
        return responses
