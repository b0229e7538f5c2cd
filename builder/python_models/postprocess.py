"""Postprocess step: raw network outputs -> detections in original pixels, padded to top-k with a count."""

import json
import os
import sys
import time

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_admission import open_gate  # noqa: E402
from focoos_cv_metrics import open_cv_metrics  # noqa: E402
from focoos_processor import postprocess  # noqa: E402  (the family's processor.py, copied by the builder)
from focoos_triton_step import (  # noqa: E402
    StageMetrics,
    config_parameters,
    input_names,
    invalid_argument,
    request_parameters,
)

from focoos.processing import InvalidInputError, pad_task_outputs  # noqa: E402
from focoos.processing.postprocess import check_network_outputs  # noqa: E402
from focoos.processing.transport import (  # noqa: E402
    ADMISSION,
    ORIGINAL_HW,
    PARAM_ADMISSION_MAX_LEASE_S,
    PARAM_MAX_IN_FLIGHT,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    check_request_pixels,
)


class TritonPythonModel:
    def initialize(self, args):
        params = config_parameters(args)
        self.task = params["task"]
        self.max_top_k = int(params["top_k"])
        self.default_threshold = float(params["threshold"])
        self.options = json.loads(params["postprocess_options"])
        self.input_names = [name for name in input_names(args) if name not in (ORIGINAL_HW, ADMISSION)]
        self.metrics = StageMetrics(args["model_name"], "postprocess")
        self.cv_metrics = open_cv_metrics(args, "postprocess")  # what the model answers (off: no-ops)
        self.gate = open_gate(args, "_postprocess", int(params.get(PARAM_MAX_IN_FLIGHT, "0")),
                              float(params.get(PARAM_ADMISSION_MAX_LEASE_S, "0")))

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
                check_request_pixels(original_hw)  # masks are upsampled to these sizes: the same budget as images
                outputs = {n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.input_names}
                check_network_outputs(outputs, original_hw)
                results = postprocess(self.task, outputs, original_hw, threshold, top_k, **self.options)
                padded = pad_task_outputs(self.task, results, self.max_top_k)
                self.cv_metrics.observe_results(results, original_hw)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(n, t) for n, t in padded.items()]))
            except InvalidInputError as exc:
                self.cv_metrics.invalid(exc)
                responses.append(invalid_argument(str(exc)))
            finally:
                self._release(request)
            self.metrics.observe(start)
        return responses

    def _release(self, request):
        """Give back the admission slot the preprocess step took for this request (absent: called directly)."""
        admission = pb_utils.get_input_tensor_by_name(request, ADMISSION)
        if self.gate is not None and admission is not None:
            slot, token = (int(v) for v in admission.as_numpy().reshape(-1, 2)[0])
            self.gate.release(slot, token)

    def finalize(self):
        self.cv_metrics.close()
        if self.gate is not None:
            self.gate.close()
