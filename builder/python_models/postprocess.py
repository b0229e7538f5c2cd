"""Postprocess step: raw network outputs -> detections in original pixels, padded to top-k with a count."""

import os
import sys
import time

import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_processing import (  # noqa: E402
    InvalidInputError,
    pad_detections,
    postprocess_classification,
    postprocess_detr,
)
from focoos_processing.transport import (  # noqa: E402
    BOXES,
    CLASSES,
    NUM_DETECTIONS,
    ORIGINAL_HW,
    PARAM_THRESHOLD,
    PARAM_TOP_K,
    SCORES,
)
from focoos_triton_step import StageMetrics, config_parameters, invalid_argument, request_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        params = config_parameters(args)
        self.task = params["task"]
        self.max_top_k = int(params["top_k"])
        self.default_threshold = float(params["threshold"])
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
                logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy()
                if self.task == "detection":
                    boxes = pb_utils.get_input_tensor_by_name(request, "boxes").as_numpy()
                    results = postprocess_detr(boxes, logits, original_hw, threshold, top_k)
                else:
                    results = postprocess_classification(logits, threshold, top_k)
                num, boxes, scores, classes = pad_detections(results, self.max_top_k)
                tensors = [pb_utils.Tensor(NUM_DETECTIONS, num)]
                if self.task == "detection":
                    tensors.append(pb_utils.Tensor(BOXES, boxes))
                tensors += [pb_utils.Tensor(SCORES, scores), pb_utils.Tensor(CLASSES, classes)]
                responses.append(pb_utils.InferenceResponse(tensors))
            except InvalidInputError as exc:
                responses.append(invalid_argument(str(exc)))
            self.metrics.observe(start)
        return responses
