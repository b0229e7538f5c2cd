"""Helpers shared by the Python-backend steps: config parameters, typed errors, stage metrics.

Copied next to each step's model.py as `focoos_triton_step.py`; imports only Triton's pb_utils.
"""

from __future__ import annotations

import json
import time

import triton_python_backend_utils as pb_utils


def config_parameters(args: dict) -> dict[str, str]:
    """The `parameters` of the model's config.pbtxt as plain strings."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def input_names(args: dict) -> list[str]:
    """Names of the model's inputs, in config order."""
    return [tensor["name"] for tensor in json.loads(args["model_config"])["input"]]


def request_parameters(request) -> dict:
    """Per-call options the client sent as request parameters (they reach every ensemble step)."""
    raw = request.parameters()
    return json.loads(raw) if raw else {}


def invalid_argument(message: str):
    """A response that reaches the caller as gRPC INVALID_ARGUMENT with our message."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))


def server_busy(message: str):
    """A refusal for lack of capacity: it reaches the caller as gRPC UNAVAILABLE (HTTP 503) with our message."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.UNAVAILABLE))


class StageMetrics:
    """Custom Prometheus counters per stage: total microseconds and requests (rate() gives the mean)."""

    def __init__(self, model_name: str, stage: str) -> None:
        labels = {"model": model_name, "stage": stage}
        try:
            # The families must outlive their metrics: keep references to both.
            self._families = (
                pb_utils.MetricFamily(
                    name="focoos_stage_duration_us",
                    description="Time spent in a Python-backend stage, microseconds",
                    kind=pb_utils.MetricFamily.COUNTER,
                ),
                pb_utils.MetricFamily(
                    name="focoos_stage_requests_total",
                    description="Requests handled by a Python-backend stage",
                    kind=pb_utils.MetricFamily.COUNTER,
                ),
            )
            self._duration = self._families[0].Metric(labels=labels)
            self._count = self._families[1].Metric(labels=labels)
        except Exception:  # noqa: BLE001 - metrics are optional; older backends lack them
            self._duration = self._count = None

    def observe(self, start: float, requests: int = 1) -> None:
        if self._duration is not None:
            self._duration.increment((time.perf_counter() - start) * 1e6)
            self._count.increment(requests)
