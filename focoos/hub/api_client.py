"""HTTP to the Focoos hub: Focoos' headers, a timeout on every call, typed errors, atomic downloads.

Hub calls carry `X-API-Key` and `user_agent: focoos/<version>` (Focoos' header names). Presigned
download and upload URLs are called without them, as Focoos does. Every failure becomes a HubError
subclass naming the URL and status: no requests exception leaks to the caller.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from focoos import settings
from focoos.download import TruncatedDownloadError, write_complete
from focoos.errors import HubAuthError, HubError, HubNotFoundError, HubUnreachableError
from focoos.version import __version__

logger = logging.getLogger("focoos.hub")

DEFAULT_TIMEOUT_S = 30.0  # per connect and per socket read, not for a whole transfer
_CHUNK_BYTES = 1 << 20


def package_version() -> str:
    try:
        return metadata.version("focoos")
    except metadata.PackageNotFoundError:
        return __version__


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def check_response(response: requests.Response, what: str) -> requests.Response:
    """Return a 2xx response; any other status raises the HubError subclass that fits it."""
    if 200 <= response.status_code < 300:
        return response
    request = response.request
    message = f"{what}: {request.method} {response.url} -> HTTP {response.status_code}: {_detail(response)}"
    if response.status_code == 401:
        raise HubAuthError(f"{message} (is FOCOOS_API_KEY right?)", response.status_code)
    if response.status_code == 403:
        raise HubAuthError(message, response.status_code)
    if response.status_code == 404:
        raise HubNotFoundError(message, response.status_code)
    raise HubError(message, response.status_code)


class ApiClient:
    """Calls `host_url/<path>` with the API key; one instance per FocoosHUB, shared by its remote objects."""

    def __init__(
        self, api_key: str | None = None, host_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.api_key = api_key if api_key is not None else settings.api_key()
        self.host_url = (host_url or settings.hub_url()).rstrip("/")
        self.timeout_s = timeout_s
        self.default_headers = {"X-API-Key": self.api_key or "", "user_agent": f"focoos/{package_version()}"}

    def url(self, path: str) -> str:
        return f"{self.host_url}/{path}"

    def _check_api_key(self) -> None:
        if not self.api_key or not self.api_key.strip():
            raise HubAuthError(
                f"no API key for the hub at {self.host_url}: set FOCOOS_API_KEY or pass FocoosHUB(api_key=...)"
            )

    def _send(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        try:
            return requests.request(method, url, headers=headers, timeout=self.timeout_s, **kwargs)
        except requests.Timeout as exc:
            raise HubUnreachableError(f"{method} {url}: no answer within {self.timeout_s:g} s") from exc
        except requests.RequestException as exc:
            raise HubUnreachableError(f"{method} {url}: {exc}") from exc

    def request(
        self, method: str, path: str, extra_headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One call to the hub (params=, json=, files=, stream= as in requests); unreachable -> HubUnreachableError."""
        self._check_api_key()
        return self._send(method, self.url(path), {**self.default_headers, **(extra_headers or {})}, **kwargs)

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=data, **kwargs)

    def patch(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=data, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def call_json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """A hub call that must succeed and answer JSON; `what` names it in errors."""
        response = check_response(self.request(method, path, **kwargs), what)
        try:
            return response.json()
        except ValueError as exc:
            raise HubError(f"{what}: {method} {response.url} answered no JSON: {response.text[:200]}") from exc

    def download(self, url: str, folder: Path, file_name: str | None = None, what: str = "download") -> Path:
        """Stream a presigned URL into `folder`; the file appears only complete (focoos.download)."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise HubError(f"{what}: {folder} is not a folder")
        target = folder / (file_name or os.path.basename(urlparse(url).path) or "download")
        try:
            with check_response(self._send("GET", url, {}, stream=True), what) as response:
                expected = int(response.headers.get("Content-Length") or 0) or None
                written = write_complete(response.iter_content(chunk_size=_CHUNK_BYTES), target, expected)
        except (requests.RequestException, TruncatedDownloadError) as exc:  # dropped or stalled mid-body
            raise HubUnreachableError(f"{what}: GET {url} broke off: {exc}") from exc
        logger.info("downloaded %s (%.2f MB)", target, written / 2**20)
        return target

    def upload_presigned(
        self, presigned: dict[str, Any], path: Path, what: str, content_type: str | None = None
    ) -> None:
        """POST a file to a presigned URL: the hub's form fields first, then the file (S3's form upload)."""
        try:
            url, fields = presigned["url"], dict(presigned["fields"])
        except (KeyError, TypeError) as exc:
            raise HubError(f"{what}: the hub's upload URL answer lacks url/fields: {presigned}") from exc
        with Path(path).open("rb") as fh:
            file_part = (Path(path).name, fh) if content_type is None else (Path(path).name, fh, content_type)
            check_response(self._send("POST", url, {}, data=fields, files={"file": file_part}), what)
