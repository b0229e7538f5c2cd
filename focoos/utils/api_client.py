"""Focoos' `focoos.utils.api_client.ApiClient`: the hub client plus its plain-URL helpers.

`download_ext_file(..., skip_if_exists=True)` returns a file already in place without any request, which is
how tutorials that fetch sample datasets run offline once the file is there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from focoos.hub.api_client import ApiClient as HubApiClient

__all__ = ["ApiClient"]


class ApiClient(HubApiClient):
    """Calls to the hub (API key, host URL from the environment) and to external URLs (no key sent)."""

    def external_get(self, path: str, params: dict[str, Any] | None = None, stream: bool = False) -> requests.Response:
        """GET an absolute URL outside the hub."""
        return self._send("GET", path, {}, params=params, stream=stream)

    def external_post(self, path: str, data: dict[str, Any] | None = None, files: Any = None,
                      extra_headers: dict[str, str] | None = None, stream: bool = False) -> requests.Response:
        """POST to an absolute URL outside the hub."""
        return self._send("POST", path, dict(extra_headers or {}), json=data, files=files, stream=stream)

    def upload_file(self, path: str, file_path: str, file_size: int) -> requests.Response:
        """Ask the hub for an upload URL for `file_path` (Focoos' call; the upload itself is a presigned POST)."""
        return self.post(path, data={"path": file_path, "file_size_bytes": file_size})

    def download_ext_file(
        self, uri: str, file_dir: str | Path | None = None, file_name: str | None = None, skip_if_exists: bool = False
    ) -> str:
        """Download `uri` into `file_dir` (default: the cache folder) and return the file's path; with
        `skip_if_exists`, an existing file of that name is returned without a request."""
        from focoos import settings

        folder = Path(file_dir) if file_dir is not None else settings.cache_dir()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"Path is not a directory: {folder}")
        target = folder / (file_name or os.path.basename(urlparse(uri).path) or "download")
        if skip_if_exists and target.is_file():
            return str(target)
        folder.mkdir(parents=True, exist_ok=True)
        return str(self.download(uri, folder, target.name, what=f"download {uri}"))
