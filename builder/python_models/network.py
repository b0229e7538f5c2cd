"""Network step for servers with only the python backend: runs the exported ONNX or TorchScript file.

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


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config_parameters(args)
        self.input_name = config["input"][0]["name"]
        self.input_dims = tuple(int(d) for d in config["input"][0]["dims"])
        self.output_names = [output["name"] for output in config["output"]]
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), params["model_file"])
        threads = int(params.get("intra_op_threads", "0"))  # 0: the runtime's default, every core
        if params["runtime_type"] == "torchscript_32":
            import torch

            if threads > 0:
                torch.set_num_threads(threads)
            self._torch = torch
            self.module = torch.jit.load(path, map_location="cpu").eval()
            self.run = self._run_torchscript
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            # Idle intra-op threads sleep instead of spinning: the decode and postprocess steps share the cores.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            self.run = self._run_onnx
        self.metrics = StageMetrics(args["model_name"], "network")

    def _run_onnx(self, batch):
        return self.session.run(None, {self.session.get_inputs()[0].name: batch})

    def _run_torchscript(self, batch):
        with self._torch.inference_mode():
            outputs = self.module(self._torch.from_numpy(batch))
        outputs = (outputs,) if isinstance(outputs, self._torch.Tensor) else outputs
        return [out.numpy() for out in outputs]

    def _problem(self, batch):
        """Why a request's input cannot be run, or None."""
        if batch.dtype != np.float32 or batch.ndim != 1 + len(self.input_dims) or batch.shape[0] < 1 \
                or tuple(batch.shape[1:]) != self.input_dims:
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
