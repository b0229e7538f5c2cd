"""Focoos' `FOCOOS_CONFIG`: the SDK settings, each read from its environment variable when asked.

Focoos reads them once at import (pydantic-settings); here each attribute reads the environment on access,
so a variable set after `import focoos` still counts, as for every other setting of this package.
"""

from __future__ import annotations

import os
from typing import Literal

from focoos import settings
from focoos.ports import RuntimeType

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "FATAL", "CRITICAL"]
DEV_API_URL = "https://api.dev.focoos.ai/v0"
PROD_API_URL = settings.HUB_URL
LOCAL_API_URL = "http://localhost:8501/v0"


class FocoosConfig:
    """focoos_api_key (FOCOOS_API_KEY), focoos_log_level (FOCOOS_LOG_LEVEL, default INFO here: Focoos'
    DEBUG floods notebooks), default_host_url (DEFAULT_HOST_URL), runtime_type (RUNTIME_TYPE, default
    TORCHSCRIPT_32), warmup_iter (WARMUP_ITER, default 2)."""

    @property
    def focoos_api_key(self) -> str | None:
        return settings.api_key()

    @property
    def focoos_log_level(self) -> str:
        return os.environ.get("FOCOOS_LOG_LEVEL", "INFO").upper()

    @property
    def default_host_url(self) -> str:
        return settings.hub_url()

    @property
    def runtime_type(self) -> RuntimeType:
        value = os.environ.get("RUNTIME_TYPE", RuntimeType.TORCHSCRIPT_32.value)
        return RuntimeType(value.lower())

    @property
    def warmup_iter(self) -> int:
        return int(os.environ.get("WARMUP_ITER", "2"))

    def __repr__(self) -> str:
        key = self.focoos_api_key
        return (f"FocoosConfig(focoos_api_key={'***' if key else None}, focoos_log_level={self.focoos_log_level!r}, "
                f"default_host_url={self.default_host_url!r}, runtime_type={self.runtime_type.value!r}, "
                f"warmup_iter={self.warmup_iter})")


FOCOOS_CONFIG = FocoosConfig()
