"""hub://<ref> for ModelManager.get: the model's info and weights, cached in <models_dir>/<ref>/.

Cache policy:
- cache=True: ask the hub for the model's info; weights are downloaded again only when the hub's
  `updated_at` differs from the cached one (a retrained model), else reused. When the hub cannot be
  reached (or no API key is set) and a copy is cached, that copy loads with a HubCacheWarning.
- cache=False: always download again; an unreachable hub raises.
- FOCOOS_OFFLINE=1: never contact the hub; only a cached copy loads.
The cache folder is a plain model folder (model_info.json + model_final.pth) that ModelManager.get
also loads by path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from focoos import settings
from focoos.errors import HubError, HubUnreachableError
from focoos.ports import ArtifactName, ModelInfo

from .focoos_hub import FocoosHUB, check_ref, hub_model_dir
from .ports import RemoteModelInfo

HUB_SCHEME = "hub://"


class HubCacheWarning(UserWarning):
    """A hub:// model loaded from the local cache because the hub could not be asked."""


def hub_ref(uri: str) -> str:
    """The reference in 'hub://<ref>'."""
    ref = uri[len(HUB_SCHEME):].strip("/") if uri.startswith(HUB_SCHEME) else ""
    if not ref:
        raise HubError(f"{uri!r} is not a hub reference: expected hub://<model ref>")
    return check_ref(ref)


def model_info_from_hub(remote: RemoteModelInfo, weights: Path) -> ModelInfo:
    """The hub's model info as a local ModelInfo whose weights are the downloaded file."""
    fields = remote.model_dump(mode="json", exclude_none=True)
    fields.update(weights_uri=str(weights), updated_at=remote.updated_at.isoformat(), status=remote.status.value)
    return ModelInfo.validated(f"model info of hub model {remote.ref}", **fields)


def _cached(info_file: Path, weights_file: Path, uri: str, reason: str) -> tuple[ModelInfo, Path, Path]:
    warnings.warn(f"{uri}: {reason}; loading the cached copy in {info_file.parent}", HubCacheWarning, stacklevel=4)
    return ModelInfo.from_json(info_file), weights_file, info_file.parent


def fetch_hub_model(uri: str, hub: FocoosHUB | None = None, cache: bool = True) -> tuple[ModelInfo, Path, Path]:
    """Return (model info, weights file, cache folder) of hub://<ref>, downloading what is missing or stale."""
    ref = hub_ref(uri)
    folder = hub_model_dir(ref)
    info_file, weights_file = folder / ArtifactName.INFO.value, folder / ArtifactName.WEIGHTS.value
    cached = info_file.is_file() and weights_file.is_file()
    if settings.offline():
        if cached:
            return ModelInfo.from_json(info_file), weights_file, folder
        raise HubUnreachableError(f"{uri}: FOCOOS_OFFLINE is set and no copy is cached in {folder}")
    if hub is None and not settings.api_key() and cache and cached:
        return _cached(info_file, weights_file, uri, "no FOCOOS_API_KEY to ask the hub")
    try:
        hub = hub or FocoosHUB()
        remote = hub.get_model_info(ref)
    except HubUnreachableError as exc:
        if cache and cached:
            return _cached(info_file, weights_file, uri, f"the hub is unreachable ({exc})")
        raise
    info = model_info_from_hub(remote, weights_file)  # checked before any download
    fresh = cache and cached and ModelInfo.from_json(info_file).updated_at == info.updated_at
    weights = Path(hub.download_model_pth(ref, skip_if_exists=fresh))
    info.dump_json(info_file)  # written after the weights: an info file always describes the weights beside it
    return info, weights, folder
