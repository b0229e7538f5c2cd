"""The Focoos hub over its REST API: account, models, datasets, hub:// loading and training sync.

`focoos.hub` imports requests but not torch; the training hook lives in `focoos.hub.sync`.
"""

from focoos.errors import HubAuthError, HubError, HubNotFoundError, HubUnreachableError
from focoos.ports import ArtifactName

from .api_client import DEFAULT_TIMEOUT_S, ApiClient
from .focoos_hub import FocoosHUB
from .model_cache import HubCacheWarning, fetch_hub_model
from .ports import (
    ApiKey,
    DatasetPreview,
    DatasetSpec,
    HubSyncLocalTraining,
    Metrics,
    ModelPreview,
    ModelStatus,
    Quotas,
    RemoteModelInfo,
    TrainingInfo,
    User,
)
from .remote_dataset import RemoteDataset
from .remote_model import RemoteModel

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ApiClient",
    "ApiKey",
    "ArtifactName",
    "DatasetPreview",
    "DatasetSpec",
    "FocoosHUB",
    "HubAuthError",
    "HubCacheWarning",
    "HubError",
    "HubNotFoundError",
    "HubSyncLocalTraining",
    "HubUnreachableError",
    "Metrics",
    "ModelPreview",
    "ModelStatus",
    "Quotas",
    "RemoteDataset",
    "RemoteModel",
    "RemoteModelInfo",
    "TrainingInfo",
    "User",
    "fetch_hub_model",
]
