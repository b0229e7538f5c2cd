"""Sample photos that install with packages (scikit-image's public-domain images): demos and smoke tests."""

from __future__ import annotations

import numpy as np

from focoos.errors import FocoosError

SAMPLE_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


def sample_images(names: tuple[str, ...] = SAMPLE_NAMES) -> dict[str, np.ndarray]:
    """RGB uint8 photos by name; needs the `samples` extra (scikit-image)."""
    try:
        import skimage.data
    except ImportError as exc:
        raise FocoosError("sample images need scikit-image: pip install 'focoos[samples]'") from exc
    return {name: np.ascontiguousarray(getattr(skimage.data, name)()) for name in names}
