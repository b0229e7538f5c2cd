"""What runs when the hardware asked for is not here: the CPU, said once per request, never a raw torch error.

Focoos warns and falls back when CUDA or a GPU provider (TensorRT, CUDA EP) is missing; code written for a GPU
machine then runs unchanged on a laptop. The warning names what was asked and what runs instead.
"""

from __future__ import annotations

import warnings
from typing import Any


class HardwareFallbackWarning(UserWarning):
    """A GPU device or runtime was asked for and is not available here: the CPU runs instead."""


def warn_fallback(asked: str, runs: str, why: str) -> None:
    """Warn that `asked` runs as `runs`. Python's default warning filter shows a message once per place it comes
    from, so a loop of loads, exports or benchmarks says it one time; a filter set to "always" sees every one."""
    warnings.warn(f"{asked} was asked for but {why}: running {runs} instead", HardwareFallbackWarning, stacklevel=3)


def torch_device(device: str | Any = "auto") -> Any:
    """The torch.device for `device` on this machine; cuda, cuda:N or mps without that hardware -> cpu (warned)."""
    import torch

    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    wanted = torch.device(name)
    if wanted.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            warn_fallback(f"device {name}", "on the CPU", "CUDA is not available on this machine")
            return torch.device("cpu")
        if wanted.index is not None and wanted.index >= count:
            warn_fallback(f"device {name}", "on the CPU", f"this machine has {count} CUDA device(s)")
            return torch.device("cpu")
    if wanted.type == "mps" and not torch.backends.mps.is_available():
        warn_fallback(f"device {name}", "on the CPU", "MPS is not available on this machine")
        return torch.device("cpu")
    return wanted
