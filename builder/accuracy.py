"""The build-time accuracy gate: a new repository is served on a validation split before it is published, and
refused when its metric falls more than a tolerance below the model's own eager fp32 answers.

Reduced precision, a smaller top_k or a smaller input size each trade accuracy for speed; the gate measures that
trade on the user's data, with the server and client that will answer in production (a real tritonserver, the gRPC
client), so a build that answers worse than it should never reaches a server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.ports import Task

from .configs import ACCURACY_FILE
from .repository import RepositoryError

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

# Points (AP, mIoU, top-1 accuracy: 0-100) the served metric may fall below eager fp32.
DEFAULT_TOLERANCE = 1.0
TASK_TOLERANCE = {Task.CLASSIFICATION: 0.5}
GATE_THRESHOLD = 0.0  # every answer counts: AP integrates over all scores


class AccuracyGateError(RepositoryError):
    """The new build answers worse than eager fp32 by more than the tolerance: it was not published."""


@dataclass(frozen=True)
class AccuracyCheck:
    """One gate's figures: the task's primary metric under eager fp32 and served, on `images` of `dataset`."""

    metric: str
    eager: float
    served: float
    tolerance: float
    images: int
    dataset: str | None

    @property
    def loss(self) -> float:
        return self.eager - self.served

    @property
    def passed(self) -> bool:
        return self.loss <= self.tolerance

    def summary(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return (f"accuracy check {verdict}: {self.metric} served {self.served:.2f}, eager fp32 {self.eager:.2f} "
                f"(loss {self.loss:.2f}, tolerance {self.tolerance:.2f}) on {self.images} images of "
                f"{self.dataset or 'the validation split'}")

    def write(self, folder: Path) -> None:
        (folder / ACCURACY_FILE).write_text(json.dumps({**asdict(self), "passed": self.passed}, indent=2))


def gate_inputs(model: FocoosModel, split: Any, tolerance: float | None) -> float:
    """Check what a gate is given before anything is built: a split the model can be scored on, with images, and
    a tolerance >= 0; returns the tolerance (None: the task's default)."""
    from focoos.training.evaluation import check_eval_data

    check_eval_data(model, split)
    if len(split) == 0:
        raise AccuracyGateError("the accuracy check's split has no images")
    tolerance = TASK_TOLERANCE.get(model.task, DEFAULT_TOLERANCE) if tolerance is None else float(tolerance)
    if not tolerance >= 0:
        raise AccuracyGateError(f"accuracy tolerance must be >= 0 points, got {tolerance}")
    return tolerance


def check_accuracy(model: FocoosModel, repository: Path, ensemble: str, split: Any,
                   tolerance: float | None = None) -> AccuracyCheck:
    """Serve `repository` (a tritonserver of its own on free loopback ports), score `ensemble` and the model's
    eager answers on `split` (a MapDataset: FocoosModel.eval's data), and raise AccuracyGateError when the
    served metric falls more than `tolerance` points (None: the task's default) below eager."""
    from focoos.client import TritonInferModel
    from focoos.training.evaluation import PRIMARY_METRIC, answers_metrics

    from .server import MissingBackendError, TritonServer

    tolerance = gate_inputs(model, split, tolerance)
    info = model.model_info
    metric = PRIMARY_METRIC[info.task]
    eager = answers_metrics(info, split, lambda image: model.infer(image, threshold=GATE_THRESHOLD))
    try:
        server = TritonServer(repository).start()
    except MissingBackendError as exc:
        raise AccuracyGateError(f"the accuracy check serves the build on this machine's tritonserver, which "
                                f"cannot load it: {exc}") from None
    with server, TritonInferModel(server.grpc_url, ensemble) as client:
        served = answers_metrics(info, split, lambda image: client.infer(image, threshold=GATE_THRESHOLD))
    check = AccuracyCheck(metric, eager[metric], served[metric], tolerance, len(split),
                          getattr(split, "name", None))
    if not check.passed:
        raise AccuracyGateError(f"{ensemble} was not published: {check.summary()}")
    return check
