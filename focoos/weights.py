"""Fetch weights (local path or http(s) URL, cached and checksummed) and load them strictly."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from focoos.download import write_complete
from focoos.errors import WeightsError
from focoos.settings import cache_dir, offline

DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK_BYTES = 1 << 20


class WeightsUnreachableError(WeightsError):
    """A remote weights file could not be reached (no network, DNS, refused, offline mode)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str | None, origin: str) -> None:
    if expected and sha256_of(path) != expected.lower():
        raise WeightsError(f"sha256 of {origin} does not match the expected {expected}")


def _download(url: str, target: Path, expected_sha256: str | None) -> Path:
    """Stream into place (focoos.download: complete and sha-checked, or nothing)."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks = iter(lambda: response.read(_CHUNK_BYTES), b"")
            write_complete(chunks, target, total, verify=lambda tmp: _check_sha256(tmp, expected_sha256, url))
        return target
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"cannot download weights from {url}: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, a body cut short
        raise WeightsUnreachableError(f"cannot download weights from {url}: {exc}") from exc


def cached_weights_path(url: str) -> Path:
    """Where a downloaded weights URL is kept: a file placed there by hand is used as if downloaded."""
    url_key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir() / "weights" / f"{url_key}-{Path(url.split('?')[0]).name or 'weights.pth'}"


def resolve_weights(uri: str, sha256: str | None = None, base_dir: Path | None = None) -> Path:
    """Return a local file for a weights URI: a path (relative to base_dir) or an http(s) URL.

    URLs download once into FOCOOS_CACHE_DIR/weights; a cached file is re-verified when a
    sha256 is given and fetched again if it no longer matches.
    """
    if uri.startswith(("http://", "https://")):
        target = cached_weights_path(uri)
        if target.is_file():
            try:
                _check_sha256(target, sha256, str(target))
                return target
            except WeightsError:
                target.unlink()
        if offline():
            raise WeightsUnreachableError(f"FOCOOS_OFFLINE is set: not downloading {uri}")
        return _download(uri, target, sha256)
    if uri.startswith("hub://"):
        raise WeightsError(f"{uri}: a weights_uri cannot be a hub reference; load the model with "
                           f"ModelManager.get('{uri}') instead")
    path = Path(uri).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    _check_sha256(path, sha256, str(path))
    return path


def save_checkpoint(network: Any, path: Path) -> Path:
    """Write Focoos' model_final.pth form, {"model": state_dict}, which Focoos' trainer writes too."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": network.state_dict()}, path)
    return path


def load_weights(network: Any, path: Path) -> None:
    """Load a checkpoint into the network; any missing, unexpected or mis-shaped key is an error."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"cannot read weights {path}: {exc}") from exc
    state = (
        checkpoint.get("model", checkpoint.get("state_dict", checkpoint))
        if isinstance(checkpoint, dict)
        else None
    )
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds no state dict")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v))
    if not_tensors:
        raise WeightsError(f"{path} is not a state dict: {len(not_tensors)} entries are not named tensors "
                           f"({', '.join(not_tensors[:5])})")
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:5])})")
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:5])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:5])})")
        raise WeightsError(f"weights {path} do not fit the architecture: {'; '.join(parts)}")
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:  # e.g. a tensor whose dtype cannot be copied in
        raise WeightsError(f"cannot load weights {path}: {exc}") from exc
