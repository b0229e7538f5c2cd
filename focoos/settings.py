"""Where the package keeps models, datasets, downloads and exports, and how it reaches the hub.

Each setting is one function reading one environment variable, so tests and deployments
override them without touching code. The folder defaults are Focoos' own (~/FocoosAI/...), so
runs trained with Focoos are found by name.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_DIR = Path.home() / "FocoosAI"
HUB_URL = "https://api.focoos.ai/v0"


def _path(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable, default)).expanduser()


def models_dir() -> Path:
    """Training runs and hub downloads, one folder per model: FOCOOS_MODELS_DIR, else ~/FocoosAI/models."""
    return _path("FOCOOS_MODELS_DIR", ROOT_DIR / "models")


def datasets_dir() -> Path:
    """Datasets AutoDataset reads and the hub downloads: FOCOOS_DATASETS_DIR, else ~/FocoosAI/datasets."""
    return _path("FOCOOS_DATASETS_DIR", ROOT_DIR / "datasets")


def predictions_dir() -> Path:
    """Where `focoos predict` writes results: FOCOOS_PREDICTIONS_DIR, else ~/FocoosAI/predictions."""
    return _path("FOCOOS_PREDICTIONS_DIR", ROOT_DIR / "predictions")


def cache_dir() -> Path:
    """Downloaded weights and other cached files: FOCOOS_CACHE_DIR, else ~/.cache/focoos."""
    return _path("FOCOOS_CACHE_DIR", Path.home() / ".cache" / "focoos")


def exports_dir() -> Path:
    """Default parent of `FocoosModel.export` outputs: FOCOOS_EXPORTS_DIR, else <cache>/exports."""
    return _path("FOCOOS_EXPORTS_DIR", cache_dir() / "exports")


def assets_dir() -> Path:
    """Focoos' ASSETS_DIR, the sample images tutorials read: FOCOOS_ASSETS_DIR, else <cache>/assets."""
    return _path("FOCOOS_ASSETS_DIR", cache_dir() / "assets")


def offline() -> bool:
    """FOCOOS_OFFLINE=1: never reach the network for weights (registry names then build random weights)."""
    return os.environ.get("FOCOOS_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def api_key() -> str | None:
    """The hub API key: FOCOOS_API_KEY (Focoos' variable)."""
    return os.environ.get("FOCOOS_API_KEY") or None


def hub_url() -> str:
    """The hub's REST root: DEFAULT_HOST_URL (Focoos' variable), else Focoos' production API."""
    return os.environ.get("DEFAULT_HOST_URL") or HUB_URL


def describe() -> dict[str, str]:
    """Every setting with its current value (the API key masked), for `focoos settings`."""
    key = api_key()
    return {
        "FOCOOS_MODELS_DIR": str(models_dir()),
        "FOCOOS_DATASETS_DIR": str(datasets_dir()),
        "FOCOOS_PREDICTIONS_DIR": str(predictions_dir()),
        "FOCOOS_CACHE_DIR": str(cache_dir()),
        "FOCOOS_EXPORTS_DIR": str(exports_dir()),
        "FOCOOS_OFFLINE": str(offline()),
        "FOCOOS_API_KEY": f"{key[:4]}…" if key else "(unset)",
        "DEFAULT_HOST_URL": hub_url(),
    }
