"""The Focoos hub's JSON, as pydantic models: the field names and types its REST API sends and expects.

Unknown fields are ignored, so a hub that adds fields keeps working. Light on purpose: no torch.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from focoos.ports import DatasetLayout, Task

# Validation metric names, one primary per task first: what tells a validation record from a training one.
PRIMARY_VALIDATION_METRICS = ("segm/AP", "bbox/AP", "sem_seg/mIoU", "panoptic_seg/PQ", "classification/F1")


class HubModel(BaseModel):
    """Base of the hub's JSON objects: extra fields ignored, `from_json` like Focoos' ports."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    @classmethod
    def from_json(cls, data: str | Path | dict[str, Any]):
        """A dict, or the path of a JSON file."""
        if not isinstance(data, dict):
            data = json.loads(Path(data).read_text(encoding="utf-8"))
        return cls.model_validate(data)


class ModelStatus(str, Enum):
    """Where a hub model is in its life."""

    CREATED = "CREATED"
    TRAINING_STARTING = "TRAINING_STARTING"
    TRAINING_RUNNING = "TRAINING_RUNNING"
    TRAINING_ERROR = "TRAINING_ERROR"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_STOPPED = "TRAINING_STOPPED"
    DEPLOYED = "DEPLOYED"
    DEPLOY_ERROR = "DEPLOY_ERROR"


class ApiKey(HubModel):
    key: str


class Quotas(HubModel):
    """Usage and limits of an account."""

    total_inferences: int
    max_inferences: int
    used_storage_gb: float
    max_storage_gb: float
    active_training_jobs: list[str]
    max_active_training_jobs: int
    used_mlg4dnxlarge_training_jobs_hours: float
    max_mlg4dnxlarge_training_jobs_hours: float


class User(HubModel):
    """The account the API key belongs to (GET user/)."""

    email: str
    created_at: datetime
    updated_at: datetime
    company: str | None = None
    api_key: ApiKey
    quotas: Quotas


class TrainingInfo(HubModel):
    """A training job's status history, as the hub stores it (also the `training_info` sent by syncs)."""

    algorithm_name: str | None = ""
    instance_device: str | None = None
    instance_type: str | None = None
    volume_size: int | None = None
    main_status: str | None = None
    failure_reason: str | None = None
    status_transitions: list[dict[str, Any]] | None = None
    start_time: str | None = None
    end_time: str | None = None
    artifact_location: str | None = None


class ModelPreview(HubModel):
    """One row of GET models/."""

    ref: str
    name: str
    task: Task
    description: str | None = None
    status: ModelStatus
    focoos_model: str


class DatasetSpec(HubModel):
    train_length: int
    valid_length: int
    size_mb: float


class DatasetPreview(HubModel):
    """One row of GET datasets/ (and GET datasets/<ref>)."""

    ref: str
    name: str
    task: Task
    layout: DatasetLayout
    description: str | None = None
    spec: DatasetSpec | None = None


class RemoteModelInfo(HubModel):
    """Everything the hub knows about one model (GET models/<ref>)."""

    ref: str
    name: str
    description: str | None = None
    is_managed: bool
    owner_ref: str
    focoos_model: str
    config: dict[str, Any] | None = None
    task: Task
    created_at: datetime
    updated_at: datetime
    status: ModelStatus
    model_family: str | None = None
    metrics: dict[str, Any] | None = None
    classes: list[str] | None = None
    im_size: int | tuple[int, int] | None = None
    training_info: TrainingInfo | None = None
    dataset: DatasetPreview | None = None
    hyperparameters: dict[str, Any] | None = None
    focoos_version: str | None = None


class Metrics(HubModel):
    """A run's metrics.json split into training and validation records, as syncs send them."""

    infer_metrics: list[dict[str, Any]] = Field(default_factory=list)
    valid_metrics: list[dict[str, Any]] = Field(default_factory=list)
    train_metrics: list[dict[str, Any]] = Field(default_factory=list)
    iterations: int | None = None
    best_valid_metric: dict[str, Any] | None = None

    @classmethod
    def from_metrics_file(cls, path: str | Path) -> Metrics:
        """Parse metrics.json: one JSON record per line (ours) or one JSON list (Focoos'); absent -> empty."""
        path = Path(path)
        if not path.is_file():
            return cls()
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        metrics = cls()
        for record in records:
            # per-layer losses (loss_ce_0, ...) are noise on the hub: Focoos drops them too
            record = {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()
                      if not (len(k) > 1 and k[-2] == "_" and k[-1].isdigit())}
            is_validation = any("/" in k for k in record)
            (metrics.valid_metrics if is_validation else metrics.train_metrics).append(record)
        iterations = [r.get("iteration", -1) for r in metrics.train_metrics[-1:] + metrics.valid_metrics[-1:]]
        metrics.iterations = max(iterations) if iterations else None
        if metrics.valid_metrics:
            primary = next((k for k in PRIMARY_VALIDATION_METRICS if k in metrics.valid_metrics[0]), None)
            if primary:
                metrics.best_valid_metric = max(metrics.valid_metrics, key=lambda r: r.get(primary, 0))
        return metrics


class HubSyncLocalTraining(HubModel):
    """Body of PATCH models/<ref>/sync-local-training: a local run's status, history and metrics."""

    status: ModelStatus | None = None
    training_info: TrainingInfo | None = None
    metrics: Metrics | None = None
    iterations: int | None = None
    focoos_version: str | None = None
