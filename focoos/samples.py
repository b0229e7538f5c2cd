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


def digit_canvases(count: int = 4, size: int = 256, seed: int = 1234) -> dict[str, np.ndarray]:
    """Canvases of held-out MNIST digits (never seen in training), like the bundled detector's validation data."""
    from focoos.data.digits import load_mnist_digits, make_canvas, split_by_class

    digits, labels, _ = load_mnist_digits()
    _, val_pool = split_by_class(labels)
    rng = np.random.default_rng(seed)
    return {
        f"digits_{i}": make_canvas(rng, digits, labels, val_pool, size, num_digits=(3, 6), scale=(1.5, 3.0))[0]
        for i in range(count)
    }
