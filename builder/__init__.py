"""focoos.builder: FocoosModels into a Triton model repository, and a launcher for a real tritonserver.

`from focoos.builder import RepositoryBuilder, TritonServer`; each loads its module on first use, so the
server launcher does not import the repository's protobuf and export code, nor the other way round.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RepositoryBuilder": ".repository",
    "RepositoryError": ".repository",
    "ServedModel": ".repository",
    "ServerTLS": ".server",
    "SwapError": ".rollout",
    "SwapLocked": ".rollout",
    "TritonServer": ".server",
    "TritonServerError": ".server",
    "roll_back": ".rollout",
    "roll_out": ".rollout",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
