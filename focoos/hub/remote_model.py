"""A model on the hub: its info, training status, logs and metrics, and the sync of a local training run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from focoos.errors import HubError
from focoos.ports import ArtifactName

from .api_client import ApiClient, check_response
from .ports import HubSyncLocalTraining, Metrics, RemoteModelInfo, TrainingInfo

logger = logging.getLogger("focoos.hub")

UPLOADABLE_SUFFIXES = (".pt", ".onnx", ".pth", ".json", ".txt")
UPLOAD_SIZE_MARGIN = 1.1  # the hub reserves 10% more than the file size, as Focoos asks it to


class RemoteModel:
    """A hub model by reference; reads its info on creation (an unknown or foreign ref raises right away)."""

    def __init__(self, model_ref: str, api_client: ApiClient) -> None:
        self.model_ref = model_ref
        self.api_client = api_client
        self.model_info: RemoteModelInfo = self.get_info()
        logger.info("hub model %s: %s (%s)", model_ref, self.model_info.name, self.model_info.status.value)

    @property
    def ref(self) -> str:
        return self.model_ref

    @property
    def metadata(self) -> RemoteModelInfo:
        """Focoos' other name for the last fetched info."""
        return self.model_info

    def get_info(self) -> RemoteModelInfo:
        """Fetch the model's current info (GET models/<ref>)."""
        data = self.api_client.call_json("GET", f"models/{self.model_ref}", f"info of hub model {self.model_ref}")
        self.model_info = RemoteModelInfo.from_json(data)
        return self.model_info

    def sync_local_training_job(
        self,
        local_training_info: HubSyncLocalTraining,
        dir: str | Path,  # noqa: A002 - Focoos' keyword
        upload_artifacts: list[ArtifactName] | None = None,
    ) -> list[ArtifactName]:
        """Report a local run's status and metrics.json to the hub, then upload the artifacts that exist.

        A failed sync raises; a failed artifact upload only logs (training results stay local), as in
        Focoos. Returns the artifacts that were uploaded.
        """
        run_dir = Path(dir)
        if not (run_dir / ArtifactName.INFO.value).is_file():
            raise HubError(f"sync of hub model {self.model_ref}: {run_dir} has no {ArtifactName.INFO.value}")
        sync = local_training_info.model_copy(
            update={"metrics": Metrics.from_metrics_file(run_dir / ArtifactName.METRICS.value)}
        )
        path = f"models/{self.model_ref}/sync-local-training"
        check_response(self.api_client.patch(path, data=sync.model_dump(mode="json")),
                       f"sync of hub model {self.model_ref}")
        uploaded = []
        for artifact in upload_artifacts or []:
            file_path = run_dir / artifact.value
            if not file_path.is_file():
                logger.warning("artifact %s not found in %s: not uploaded", artifact.value, run_dir)
                continue
            try:
                self.upload_artifact(file_path)
                uploaded.append(artifact)
            except HubError as exc:
                logger.error("upload of %s to hub model %s failed: %s", file_path, self.model_ref, exc)
        return uploaded

    def upload_artifact(self, path: str | Path) -> None:
        """Upload one run file: ask the hub for a presigned POST, then send the file there."""
        path = Path(path)
        if not path.is_file():
            raise HubError(f"upload to hub model {self.model_ref}: file not found: {path}")
        if path.suffix not in UPLOADABLE_SUFFIXES:
            raise HubError(f"upload to hub model {self.model_ref}: {path.name} is not one of {UPLOADABLE_SUFFIXES}")
        what = f"upload of {path.name} to hub model {self.model_ref}"
        presigned = self.api_client.call_json(
            "POST", f"models/{self.model_ref}/generate-upload-url", what,
            json={"file_size_bytes": int(path.stat().st_size * UPLOAD_SIZE_MARGIN), "file_name": path.name},
        )
        self.api_client.upload_presigned(presigned, path, what)
        logger.info("uploaded %s to hub model %s", path.name, self.model_ref)

    def train_info(self) -> TrainingInfo:
        """The training job's status history (GET models/<ref>/train/status)."""
        data = self.api_client.call_json("GET", f"models/{self.model_ref}/train/status",
                                         f"training status of hub model {self.model_ref}")
        return TrainingInfo.from_json(data)

    def train_logs(self) -> list[str]:
        """Training log lines; [] when the hub has none (an unreachable hub still raises)."""
        response = self.api_client.get(f"models/{self.model_ref}/train/logs")
        if response.status_code != 200:
            logger.warning("no training logs for hub model %s: HTTP %d", self.model_ref, response.status_code)
            return []
        return response.json()

    def metrics(self) -> Metrics:
        """The metrics the hub holds; empty when it has none (an unreachable hub still raises)."""
        response = self.api_client.get(f"models/{self.model_ref}/metrics")
        if response.status_code != 200:
            logger.warning("no metrics for hub model %s: HTTP %d", self.model_ref, response.status_code)
            return Metrics()
        return Metrics.from_json(response.json())

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        """Cloud inference is not part of this package: run the model locally."""
        raise HubError(
            f"remote inference on hub model {self.model_ref} is not supported here: load it locally with "
            f"ModelManager.get('hub://{self.model_ref}') and call infer() on that"
        )

    __call__ = infer

    def __repr__(self) -> str:
        info = self.model_info
        return f"RemoteModel(ref={self.model_ref!r}, name={info.name!r}, status={info.status.value})"
