"""Postprocess step: raw network outputs -> detections in original pixels, padded to top-k with a count."""

import json
import os
import sys
import time

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_processing import InvalidInputError, pad_task_outputs, postprocess_task  # noqa: E402
from focoos_processing.transport import ORIGINAL_HW, PARAM_THRESHOLD, PARAM_TOP_K  # noqa: E402
from focoos_triton_step import (  # noqa: E402
    StageMetrics,
    config_parameters,
    input_names,
    invalid_argument,
    request_parameters,
)


class TritonPythonModel:
    def initialize(self, args):
        params = config_parameters(args)
        self.task = params["task"]
        self.max_top_k = int(params["top_k"])
        self.default_threshold = float(params["threshold"])
        self.options = json.loads(params["postprocess_options"])
        self.input_names = [name for name in input_names(args) if name != ORIGINAL_HW]
        self.metrics = StageMetrics(args["model_name"], "postprocess")

    def _options(self, request):
        options = request_parameters(request)
        threshold = options.get(PARAM_THRESHOLD, self.default_threshold)
        top_k = options.get(PARAM_TOP_K, self.max_top_k)
        if not isinstance(top_k, int) or not 1 <= top_k <= self.max_top_k:
            raise InvalidInputError(f"top_k must be an integer in [1, {self.max_top_k}], got {top_k!r}")
        return threshold, top_k

    def execute(self, requests):
        responses = []
        for request in requests:
            start = time.perf_counter()
            try:
                threshold, top_k = self._options(request)
                original_hw = [tuple(hw) for hw in pb_utils.get_input_tensor_by_name(request, ORIGINAL_HW).as_numpy()]
                outputs = {n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.input_names}
                results = postprocess_task(self.task, outputs, original_hw, threshold, top_k, **self.options)
                padded = pad_task_outputs(self.task, results, self.max_top_k)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(n, t) for n, t in padded.items()]))
            except InvalidInputError as exc:
                responses.append(invalid_argument(str(exc)))
            self.metrics.observe(start)
        return responses
