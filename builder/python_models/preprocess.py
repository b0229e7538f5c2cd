"""Preprocess step: encoded bytes or raw pixels -> the network's float32 NCHW batch and the original sizes."""

import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_processing import InvalidInputError, preprocess_images  # noqa: E402
from focoos_processing.transport import (  # noqa: E402
    IMAGE,
    IMAGE_SHAPE,
    NETWORK_INPUT,
    ORIGINAL_HW,
    PARAM_REDUCED_DECODE,
    unpack_images,
)
from focoos_triton_step import StageMetrics, config_parameters, invalid_argument  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        params = config_parameters(args)
        height, width = (int(v) for v in params["input_hw"].strip("[]").split(","))
        self.size_hw = (height, width)
        self.decode_for = self.size_hw if params.get(PARAM_REDUCED_DECODE, "false") == "true" else None
        self.metrics = StageMetrics(args["model_name"], "preprocess")

    def execute(self, requests):
        responses = []
        for request in requests:
            start = time.perf_counter()
            try:
                packed = pb_utils.get_input_tensor_by_name(request, IMAGE).as_numpy()
                shape_tensor = pb_utils.get_input_tensor_by_name(request, IMAGE_SHAPE)
                shapes = None if shape_tensor is None else shape_tensor.as_numpy()
                images, full_hw = unpack_images(packed, shapes, self.decode_for)
                batch = preprocess_images(images, self.size_hw)
                original_hw = np.asarray(full_hw, dtype=np.int32)
                responses.append(
                    pb_utils.InferenceResponse(
                        [pb_utils.Tensor(NETWORK_INPUT, batch), pb_utils.Tensor(ORIGINAL_HW, original_hw)]
                    )
                )
            except InvalidInputError as exc:
                responses.append(invalid_argument(str(exc)))
            self.metrics.observe(start)
        return responses
