"""TrainerArgs(sync_to_hub=True): a trainer hook that reports a local run to its hub model.

What reaches the hub, as Focoos reports it: status TRAINING_RUNNING with metrics.json at the start,
every `sync_period` steps and after each validation; TRAINING_ERROR with the weights, log, info and
metrics when the run fails; TRAINING_COMPLETED with the final weights and metrics once the run
folder is written. A failed sync is logged and training goes on: results always stay local.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.errors import HubError
from focoos.ports import ArtifactName, ModelInfo

from .focoos_hub import FocoosHUB
from .ports import HubSyncLocalTraining, ModelStatus, TrainingInfo
from .remote_model import RemoteModel

if TYPE_CHECKING:
    from focoos.training.trainer import Trainer

logger = logging.getLogger("focoos.hub")

SYNC_PERIOD = 60  # steps between status syncs, Focoos' period
FAILURE_ARTIFACTS = (ArtifactName.WEIGHTS, ArtifactName.LOGS, ArtifactName.INFO, ArtifactName.METRICS)
FINAL_ARTIFACTS = (ArtifactName.WEIGHTS, ArtifactName.METRICS)


class SyncToHub:
    """Reports one run (output_dir) to one hub model; the run's start is recorded on creation.

    It has the four callbacks of focoos.training's TrainerHook, which the trainer calls, without
    subclassing it: focoos.hub sits below focoos.training and imports nothing of it."""

    def __init__(
        self, remote_model: RemoteModel, model_info: ModelInfo, output_dir: str | Path, sync_period: int = SYNC_PERIOD
    ) -> None:
        self.remote_model = remote_model
        self.model_info = model_info.model_copy(update={"ref": remote_model.ref})
        self.output_dir = Path(output_dir)
        self.sync_period = sync_period
        self.training_info = TrainingInfo(start_time=datetime.now().isoformat(), status_transitions=[])
        self.failure_reported = False
        self._transition(ModelStatus.TRAINING_RUNNING)

    @classmethod
    def for_new_model(cls, hub: FocoosHUB | None, model_info: ModelInfo, output_dir: str | Path) -> SyncToHub | None:
        """Create the run's hub model (hub None: FocoosHUB() from the settings); None if the hub cannot hold it."""
        remote_model = (hub or FocoosHUB()).new_model(model_info)
        if remote_model is None:
            logger.warning("%s was not created on the hub: training without sync", model_info.name)
            return None
        logger.info("%s created on the hub as %s", model_info.name, remote_model.ref)
        return cls(remote_model, model_info, output_dir)

    @property
    def ref(self) -> str:
        return self.remote_model.ref

    # -- trainer hooks (rank 0)
    def before_train(self, trainer: Trainer) -> None:
        self.training_info.instance_device = str(getattr(trainer, "device", "")) or None
        self._write_info(ModelStatus.TRAINING_RUNNING, self.model_info)
        self._sync(ModelStatus.TRAINING_RUNNING, trainer.iteration)

    def after_step(self, trainer: Trainer) -> None:
        if trainer.iteration % self.sync_period == 0:
            self._sync(ModelStatus.TRAINING_RUNNING, trainer.iteration)

    def after_eval(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._sync(ModelStatus.TRAINING_RUNNING, trainer.iteration)

    def after_train(self, trainer: Trainer, error: BaseException | None) -> None:
        if error is not None:
            self.report_failure(error, trainer.iteration)

    # -- the run's end, called by training.train
    def report_failure(self, error: BaseException, iterations: int | None = None) -> None:
        """TRAINING_ERROR with the reason and what the run left; reported once."""
        if self.failure_reported:
            return
        self.failure_reported = True
        self._transition(ModelStatus.TRAINING_ERROR, f"{type(error).__name__}: {error}")
        self._write_info(ModelStatus.TRAINING_ERROR, self._info_on_disk())
        self._sync(ModelStatus.TRAINING_ERROR, iterations, FAILURE_ARTIFACTS)

    def report_completed(self) -> None:
        """TRAINING_COMPLETED with the final weights and metrics, once model_final.pth and model_info.json exist."""
        info = self._info_on_disk()
        iterations = (info.training_info or {}).get("iterations")
        self._transition(ModelStatus.TRAINING_COMPLETED, None if iterations is None else str(iterations))
        self._write_info(ModelStatus.TRAINING_COMPLETED, info)
        self._sync(ModelStatus.TRAINING_COMPLETED, iterations, FINAL_ARTIFACTS)

    # -- helpers
    def _transition(self, status: ModelStatus, detail: str | None = None) -> None:
        now = datetime.now().isoformat()
        self.training_info.main_status = status.value
        self.training_info.status_transitions.append({"status": status.value, "timestamp": now, "detail": detail})
        if status in (ModelStatus.TRAINING_ERROR, ModelStatus.TRAINING_COMPLETED):
            self.training_info.end_time = now
        if status == ModelStatus.TRAINING_ERROR:
            self.training_info.failure_reason = detail

    def _info_on_disk(self) -> ModelInfo:
        path = self.output_dir / ArtifactName.INFO.value
        return ModelInfo.from_json(path) if path.is_file() else self.model_info

    def _write_info(self, status: ModelStatus, info: ModelInfo) -> None:
        """model_info.json with the hub ref, the status and the status history (kept beside our own training facts)."""
        training_info: dict[str, Any] = {**(info.training_info or {}),
                                         **self.training_info.model_dump(exclude_none=True)}
        info.model_copy(update={"ref": self.ref, "status": status.value, "training_info": training_info}).dump_json(
            self.output_dir / ArtifactName.INFO.value
        )

    def _sync(self, status: ModelStatus, iterations: int | None, artifacts: tuple[ArtifactName, ...] = ()) -> None:
        sync = HubSyncLocalTraining(status=status, iterations=iterations, training_info=self.training_info)
        try:
            self.remote_model.sync_local_training_job(sync, self.output_dir, list(artifacts))
        except HubError as exc:
            logger.error("sync of %s to hub model %s failed: %s", self.output_dir, self.ref, exc)
