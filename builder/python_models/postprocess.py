"""Postprocess step: raw network outputs -> detections in original pixels, padded to top-k with a count."""

import json
import os
import sys
import time

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_processing import InvalidInputError, pad_detections, pad_masks, postprocess_task  # noqa: E402
from focoos_processing.transport import (  # noqa: E402
    BOX_TASKS,
    BOXES,
    CLASSES,
    MASK_TASKS,
    MASKS,
    NUM_DETECTIONS,
    ORIGINAL_HW,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    SCORES,
)
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
                num, boxes, scores, classes = pad_detections(results, self.max_top_k)
                tensors = [pb_utils.Tensor(NUM_DETECTIONS, num)]
                if self.task in BOX_TASKS:
                    tensors.append(pb_utils.Tensor(BOXES, boxes))
                tensors += [pb_utils.Tensor(SCORES, scores), pb_utils.Tensor(CLASSES, classes)]
                if self.task in MASK_TASKS:
                    tensors.append(pb_utils.Tensor(MASKS, pad_masks(results, self.max_top_k)))
                responses.append(pb_utils.InferenceResponse(tensors))
            except InvalidInputError as exc:
                responses.append(invalid_argument(str(exc)))
            self.metrics.observe(start)
        return responses
