"""Network step for servers with only the python backend: runs the exported ONNX or TorchScript file.

Requests the dynamic batcher groups are concatenated into one batch, run once, and split back.
"""

import json
import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_triton_step import StageMetrics, config_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config_parameters(args)
        self.input_name = config["input"][0]["name"]
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

    def execute(self, requests):
        start = time.perf_counter()
        batches = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        outputs = self.run(np.concatenate(batches) if len(batches) > 1 else batches[0])
        responses, offset = [], 0
        for batch in batches:
            end = offset + batch.shape[0]
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(out[offset:end]).astype(np.float32))
                       for name, out in zip(self.output_names, outputs, strict=True)]
            responses.append(pb_utils.InferenceResponse(tensors))
            offset = end
        self.metrics.observe(start, len(requests))
        return responses
