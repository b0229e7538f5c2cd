"""`took` and `Timer`: Focoos' timing helpers (a decorator that logs a call's duration, a pausable stopwatch)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

from focoos.utils.logger import get_logger

F = TypeVar("F", bound=Callable[..., Any])
logger = get_logger("timer")


def took(func: F) -> F:
    """Decorator: log (DEBUG) how long each call of `func` took, in seconds."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            logger.debug("%s took %.3fs", func.__name__, perf_counter() - start)

    return wrapper  # type: ignore[return-value]


class Timer:
    """Seconds since start/reset, excluding paused spans (Focoos' Timer)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._start = perf_counter()
        self._paused: float | None = None
        self._total_paused = 0.0
        self._count_start = 1

    def pause(self) -> None:
        if self._paused is not None:
            raise ValueError("Trying to pause a Timer that is already paused!")
        self._paused = perf_counter()

    def is_paused(self) -> bool:
        return self._paused is not None

    def resume(self) -> None:
        if self._paused is None:
            raise ValueError("Trying to resume a Timer that is not paused!")
        self._total_paused += perf_counter() - self._paused
        self._paused = None
        self._count_start += 1

    def seconds(self) -> float:
        end = self._paused if self._paused is not None else perf_counter()
        return end - self._start - self._total_paused

    def avg_seconds(self) -> float:
        return self.seconds() / self._count_start
