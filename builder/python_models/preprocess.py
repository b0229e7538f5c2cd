"""Preprocess step: encoded bytes or raw pixels -> the network's float32 NCHW batch and the original sizes."""

import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from focoos_admission import open_gate  # noqa: E402
from focoos_cv_metrics import open_cv_metrics  # noqa: E402
from focoos_triton_step import StageMetrics, config_parameters, invalid_argument, server_busy  # noqa: E402

from focoos.processing import InvalidInputError, preprocess_images  # noqa: E402
from focoos.processing.preprocess import native_size  # noqa: E402
from focoos.processing.transport import (  # noqa: E402
    ADMISSION,
    IMAGE,
    IMAGE_SHAPE,
    NETWORK_INPUT,
    ORIGINAL_HW,
    PARAM_ADMISSION_MAX_LEASE_S,
    PARAM_MAX_IN_FLIGHT,
    PARAM_NATIVE_MAX_PIXELS,
    PARAM_REDUCED_DECODE,
    SERVER_BUSY,
    unpack_images,
)

NOT_GATED = (-1, 0)  # the admission of a request when the ensemble has no in-flight limit


class TritonPythonModel:
    def initialize(self, args):
        params = config_parameters(args)
        height, width = (int(v) for v in params["input_hw"].strip("[]").split(","))
        self.size_hw = (height, width)
        self.native_max_pixels = int(params.get(PARAM_NATIVE_MAX_PIXELS, "0"))  # > 0: images run at their own size
        reduced = params.get(PARAM_REDUCED_DECODE, "false") == "true" and not self.native_max_pixels
        self.decode_for = self.size_hw if reduced else None
        self.metrics = StageMetrics(args["model_name"], "preprocess")
        self.cv_metrics = open_cv_metrics(args, "preprocess")  # what the model sees (off: no-ops)
        self.max_in_flight = int(params.get(PARAM_MAX_IN_FLIGHT, "0"))
        lease_s = float(params.get(PARAM_ADMISSION_MAX_LEASE_S, "0"))
        self.gate = open_gate(args, "_preprocess", self.max_in_flight, lease_s)

    def execute(self, requests):
        responses = []
        for request in requests:
            start = time.perf_counter()
            admission = self.gate.acquire() if self.gate is not None else NOT_GATED
            if admission is None:  # refused before its input is even read
                responses.append(server_busy(f"{SERVER_BUSY}: {self.max_in_flight} requests in flight, the most "
                                             "this model admits"))
                continue
            try:
                packed = pb_utils.get_input_tensor_by_name(request, IMAGE).as_numpy()
                shape_tensor = pb_utils.get_input_tensor_by_name(request, IMAGE_SHAPE)
                shapes = None if shape_tensor is None else shape_tensor.as_numpy()
                images, full_hw = unpack_images(packed, shapes, self.decode_for)
                self.cv_metrics.observe_inputs(full_hw)
                size_hw = native_size(images, self.native_max_pixels) if self.native_max_pixels else self.size_hw
                batch = preprocess_images(images, size_hw)
                original_hw = np.asarray(full_hw, dtype=np.int32)
                responses.append(
                    pb_utils.InferenceResponse(
                        [pb_utils.Tensor(NETWORK_INPUT, batch), pb_utils.Tensor(ORIGINAL_HW, original_hw),
                         pb_utils.Tensor(ADMISSION, np.tile(np.asarray(admission, np.int64), (len(images), 1)))]
                    )
                )
            except InvalidInputError as exc:
                self.cv_metrics.invalid(exc)
                self._release(admission)
                responses.append(invalid_argument(str(exc)))
            except BaseException:
                self._release(admission)
                raise
            self.metrics.observe(start)
        return responses

    def _release(self, admission):
        if self.gate is not None:
            self.gate.release(*admission)

    def finalize(self):
        self.cv_metrics.close()
        if self.gate is not None:
            self.gate.close()
