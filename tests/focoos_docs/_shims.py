"""What a notebook or a reader provides around Focoos' doc cells, and nothing else.

`display` is IPython's (print here); PLACEHOLDER_* stand for the values a page asks its reader to fill in.
"""

from __future__ import annotations

import os
from typing import Any


def display(*objects: Any) -> None:
    """IPython's display(): outside a notebook, show the object's repr."""
    for obj in objects:
        print(repr(obj)[:200])


def gpus() -> int:
    """CUDA devices visible (0 without torch or CUDA): cells that ask for GPUs run only where they exist."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


API_KEY = os.environ.get("FOCOOS_API_KEY", "")
HUB_MODEL_REF = "digits-detector"  # a model the loopback hub holds (tests/test_focoos_docs.py)
HUB_DATASET_REF = "digits-ds"  # a dataset the loopback hub holds
