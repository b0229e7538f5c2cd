"""A dataset on the hub: its info, the download of its zip into the datasets folder, and upload."""

from __future__ import annotations

import logging
from pathlib import Path

from focoos import settings
from focoos.errors import HubError

from .api_client import ApiClient, check_response
from .ports import DatasetPreview, DatasetSpec

logger = logging.getLogger("focoos.hub")


class RemoteDataset:
    """A hub dataset by reference; reads its info on creation (an unknown or foreign ref raises right away)."""

    def __init__(self, ref: str, api_client: ApiClient) -> None:
        self.ref = ref
        self.api_client = api_client
        self.metadata: DatasetPreview = self.get_info()

    def get_info(self) -> DatasetPreview:
        """Fetch the dataset's info (GET datasets/<ref>)."""
        data = self.api_client.call_json("GET", f"datasets/{self.ref}", f"info of hub dataset {self.ref}")
        return DatasetPreview.from_json(data)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def task(self):
        return self.metadata.task

    @property
    def layout(self):
        return self.metadata.layout

    def download_data(self, path: str | Path | None = None) -> str:
        """Download the dataset's zip into `path` (default: the datasets folder); an existing zip is reused.

        Returns the zip's path, which `AutoDataset(dataset_name=...)` and the CLI accept.
        """
        folder = Path(path) if path is not None else settings.datasets_dir()
        what = f"download of hub dataset {self.ref}"
        url = self.api_client.call_json("GET", f"datasets/{self.ref}/download", what).get("download_uri")
        if not url:
            raise HubError(f"{what}: the hub answered no download_uri")
        target = folder / Path(url.split("?")[0]).name
        if target.is_file():
            logger.info("hub dataset %s already downloaded: %s", self.ref, target)
            return str(target)
        return str(self.api_client.download(url, folder, what=what))

    def upload_data(self, path: str | Path) -> DatasetSpec | None:
        """Upload a dataset zip, then ask the hub to validate it; returns the spec the hub computed."""
        path = Path(path)
        if path.suffix != ".zip":
            raise HubError(f"upload to hub dataset {self.ref}: {path} must be a .zip")
        if not path.is_file():
            raise HubError(f"upload to hub dataset {self.ref}: file not found: {path}")
        what = f"upload of {path.name} to hub dataset {self.ref}"
        presigned = self.api_client.call_json(
            "POST", f"datasets/{self.ref}/generate-upload-url", what,
            json={"file_size_bytes": path.stat().st_size, "file_name": path.name},
        )
        self.api_client.upload_presigned(presigned, path, what, content_type="application/zip")
        validation = self.api_client.post(f"datasets/{self.ref}/complete-upload")
        check_response(validation, f"validation of hub dataset {self.ref}")
        self.metadata = self.get_info()
        return self.metadata.spec

    def __str__(self) -> str:
        return f"RemoteDataset(ref={self.ref}, name={self.name}, task={self.task}, layout={self.layout})"
