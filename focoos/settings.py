"""Where the package keeps downloads and exports; environment variables override the defaults."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Downloaded weights and other cached files: FOCOOS_CACHE_DIR, else ~/.cache/focoos."""
    return Path(os.environ.get("FOCOOS_CACHE_DIR", Path.home() / ".cache" / "focoos")).expanduser()


def exports_dir() -> Path:
    """Default parent of `FocoosModel.export` outputs: FOCOOS_EXPORTS_DIR, else <cache>/exports."""
    return Path(os.environ.get("FOCOOS_EXPORTS_DIR", cache_dir() / "exports")).expanduser()


def offline() -> bool:
    """FOCOOS_OFFLINE=1: never reach the network for weights (registry names then build random weights)."""
    return os.environ.get("FOCOOS_OFFLINE", "").strip().lower() in ("1", "true", "yes")
