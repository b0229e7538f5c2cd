"""FocoosHUB: the account's models and datasets on the Focoos hub, over its REST API.

Example:
    >>> hub = FocoosHUB()                    # FOCOOS_API_KEY, DEFAULT_HOST_URL
    >>> [m.ref for m in hub.list_remote_models()]
    >>> model = ModelManager.get("hub://<ref>", hub=hub)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from focoos import settings
from focoos.errors import HubAuthError, HubError
from focoos.ports import ArtifactName, ModelFamily, ModelInfo, Task

from .api_client import DEFAULT_TIMEOUT_S, ApiClient
from .ports import DatasetPreview, ModelPreview, RemoteModelInfo, User
from .remote_dataset import RemoteDataset
from .remote_model import RemoteModel

logger = logging.getLogger("focoos.hub")

SUPPORTED_MODEL_FAMILIES = (
    ModelFamily.BISENETFORMER, ModelFamily.DETR, ModelFamily.MASKFORMER, ModelFamily.IMAGE_CLASSIFIER,
)
# What new_model sends (POST models/local-model), in Focoos' field names.
NEW_MODEL_FIELDS = ("name", "focoos_model", "description", "config", "task", "classes", "im_size", "train_args",
                    "focoos_version")
_REF = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def check_ref(ref: str) -> str:
    """A hub reference is used in URLs and as a cache folder name: plain segments only."""
    if not _REF.fullmatch(ref or "") or any(part in (".", "..") for part in ref.split("/")):
        raise HubError(f"invalid hub reference {ref!r}: expected letters, digits, '-', '_' or '.' segments")
    return ref


def hub_model_dir(model_ref: str) -> Path:
    """Where the weights and info of hub model `model_ref` are cached: <models_dir>/<ref>."""
    return settings.models_dir() / check_ref(model_ref)


class FocoosHUB:
    """Authenticated access to the hub; checks the key on creation by reading the account (`user_info`)."""

    def __init__(
        self, api_key: str | None = None, host_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.api_key = api_key or settings.api_key()
        self.host_url = host_url or settings.hub_url()
        if not self.api_key:
            raise HubAuthError(f"no API key for the hub at {self.host_url}: set FOCOOS_API_KEY or pass api_key=")
        self.api_client = ApiClient(api_key=self.api_key, host_url=self.host_url, timeout_s=timeout_s)
        self.user_info = self.get_user_info()
        logger.info("logged in to %s as %s", self.host_url, self.user_info.email)

    def get_user_info(self) -> User:
        """The account and its quotas (GET user/)."""
        return User.from_json(self.api_client.call_json("GET", "user/", "user info"))

    def get_model_info(self, model_ref: str) -> RemoteModelInfo:
        """Everything the hub knows about one model (GET models/<ref>)."""
        data = self.api_client.call_json("GET", f"models/{check_ref(model_ref)}", f"info of hub model {model_ref}")
        return RemoteModelInfo.from_json(data)

    def list_remote_models(self) -> list[ModelPreview]:
        """The account's models (GET models/)."""
        return [ModelPreview.from_json(row) for row in self.api_client.call_json("GET", "models/", "model list")]

    def get_remote_model(self, model_ref: str) -> RemoteModel:
        return RemoteModel(check_ref(model_ref), self.api_client)

    def download_model_pth(self, model_ref: str, skip_if_exists: bool = True) -> str:
        """Download the model's weights to <models_dir>/<ref>/model_final.pth and return that path."""
        folder = hub_model_dir(model_ref)
        target = folder / ArtifactName.WEIGHTS.value
        if skip_if_exists and target.is_file():
            logger.info("hub model %s: weights already downloaded", model_ref)
            return str(target)
        what = f"weights of hub model {model_ref}"
        answer = self.api_client.call_json("GET", f"models/{model_ref}/download", what, params={"format": "pth"})
        url = answer.get("download_uri") if isinstance(answer, dict) else None
        if not url:
            raise HubError(f"{what}: the hub answered no download_uri: {answer}")
        return str(self.api_client.download(url, folder, ArtifactName.WEIGHTS.value, what=what))

    def list_remote_datasets(self, include_shared: bool = False) -> list[DatasetPreview]:
        """The account's datasets (GET datasets/), plus those shared with it (GET datasets/shared)."""
        rows = self.api_client.call_json("GET", "datasets/", "dataset list")
        if include_shared:
            rows += self.api_client.call_json("GET", "datasets/shared", "shared dataset list")
        return [DatasetPreview.from_json(row) for row in rows]

    def get_remote_dataset(self, ref: str) -> RemoteDataset:
        return RemoteDataset(check_ref(ref), self.api_client)

    def new_model(self, model_info: ModelInfo) -> RemoteModel | None:
        """Create a hub model for a local training run (POST models/local-model).

        Returns None, with a warning, for families the hub cannot hold (keypoints), as Focoos does;
        a name already taken raises HubError (HTTP 409).
        """
        if model_info.task == Task.KEYPOINT or model_info.model_family not in SUPPORTED_MODEL_FAMILIES:
            logger.warning("the hub holds no %s / %s models: this run is not synced",
                           model_info.model_family.value, model_info.task.value)
            return None
        fields = model_info.model_dump(mode="json")
        body = {key: fields.get(key) for key in NEW_MODEL_FIELDS}
        body["config"] = body["config"] or {}
        data = self.api_client.call_json("POST", "models/local-model", f"creation of hub model {model_info.name}",
                                         json=body)
        return RemoteModel(data["ref"], self.api_client)

    def __repr__(self) -> str:
        return f"FocoosHUB(host_url={self.host_url!r}, user={self.user_info.email!r})"
