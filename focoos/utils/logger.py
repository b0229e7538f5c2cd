"""`get_logger`: Focoos' named loggers under the `focoos` logger, so one level setting reaches them all."""

from __future__ import annotations

import logging
import os
from typing import Literal

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "FATAL", "CRITICAL"]

ROOT_LOGGER = "focoos"


def get_logger(name: str = ROOT_LOGGER, level: LogLevel | str | None = None) -> logging.Logger:
    """A logger below `focoos` (so `logging.getLogger("focoos")` configures it); `level`, or else
    FOCOOS_LOG_LEVEL when set, becomes its level. Handlers are left to the application, as the
    logging docs ask of libraries."""
    full = name if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + ".") else f"{ROOT_LOGGER}.{name}"
    logger = logging.getLogger(full)
    chosen = level or os.environ.get("FOCOOS_LOG_LEVEL")
    if chosen:
        logger.setLevel(str(chosen).upper())
    return logger
