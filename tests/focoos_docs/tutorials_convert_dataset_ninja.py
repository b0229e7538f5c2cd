# ruff: noqa: E402, E501, F401, F811, F821, I001
"""Focoos 0.25 tutorials/convert_dataset_ninja.ipynb, its code cells in order (MIT, FocoosAI).

The notebook converts two DatasetNinja (Supervisely) downloads, "pascal" (bitmap masks, semantic segmentation)
and "vehicle" (rectangles, detection), from "../datasets". Offline, this script first writes two small projects
of that layout there (random pictures with drawn objects). The notebook's shell cells (`%cd`, `!zip`, `!mv`)
are done with Python's shutil.
"""

import base64
import json
import zlib
from pathlib import Path

import cv2
import numpy as np


def _bitmap(mask: np.ndarray) -> str:
    """Supervisely's bitmap encoding: base64 of zlib of a PNG whose alpha channel is the mask."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[..., 3] = mask.astype(np.uint8) * 255
    return base64.b64encode(zlib.compress(cv2.imencode(".png", rgba)[1].tobytes())).decode()


def _project(root: Path, classes: list[str], splits: list[str], geometry: str, rng: np.random.Generator) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"classes": [{"title": c, "shape": geometry} for c in classes]}))
    for split in splits:
        (root / split / "img").mkdir(parents=True, exist_ok=True)
        (root / split / "ann").mkdir(parents=True, exist_ok=True)
        for i in range(3):
            image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
            objects = []
            for k, title in enumerate(classes):
                x, y = int(rng.integers(0, 80)), int(rng.integers(0, 50))
                w, h = 20 + 4 * k, 24
                if geometry == "bitmap":
                    mask = np.zeros((h, w), dtype=bool)
                    cv2.ellipse(mask.view(np.uint8), (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1, -1)
                    objects.append({"classTitle": title, "geometryType": "bitmap",
                                    "bitmap": {"origin": [x, y], "data": _bitmap(mask)}})
                else:
                    objects.append({"classTitle": title, "geometryType": "rectangle",
                                    "points": {"exterior": [[x, y], [x + w, y + h]], "interior": []}})
                image[y : y + h, x : x + w] = (60 * (k + 1)) % 255
            name = f"{split}_{i}.jpg"
            cv2.imwrite(str(root / split / "img" / name), image)
            (root / split / "ann" / f"{name}.json").write_text(
                json.dumps({"size": {"height": 96, "width": 128}, "objects": objects}))


_rng = np.random.default_rng(0)
_project(Path("../datasets/pascal"), ["person", "dog", "neutral"], ["train", "val"], "bitmap", _rng)
_project(Path("../datasets/vehicle"), ["car", "truck"], ["train", "valid"], "rectangle", _rng)

# ---- cell 0
dataset_dir = "../datasets"
dataset_name = "pascal"
new_name = "pascal_mask"

use_background = True
ignore_classes = ["neutral"]
ignore_folders = []
train_split_name = "train"
val_split_name = "val"
image_folder = "img"
mask_folder = "ann"

# ---- cell 1
from focoos.data.converters import convert_datasetninja_to_mask_dataset

convert_datasetninja_to_mask_dataset(
    dataset_root=dataset_dir,
    dataset_name=dataset_name,
    new_name=new_name,
    image_folder=image_folder,
    mask_folder=mask_folder,
    ignore_folders=ignore_folders,
    use_background=use_background,
    ignore_classes=ignore_classes,
    train_split_name=train_split_name,
    val_split_name=val_split_name,
)

# ---- cell 2
from focoos.data.auto_dataset import AutoDataset
from focoos.data.default_aug import DatasetAugmentations
from focoos.ports import DatasetLayout, DatasetSplitType, Task

task = Task.SEMSEG
layout = DatasetLayout.ROBOFLOW_SEG
auto_dataset = AutoDataset(dataset_name=new_name, task=task, layout=layout, datasets_dir=dataset_dir)

augs = DatasetAugmentations(resolution=512)

train_dataset = auto_dataset.get_split(augs=augs, split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=augs, split=DatasetSplitType.VAL)

# ---- cell 3
train_dataset.preview()

# ---- cell 4 (%cd {dataset_dir}/{new_name}; !zip -r {new_name}.zip .; !mv {new_name}.zip ../; %cd ..)
import shutil

shutil.make_archive(f"{dataset_dir}/{new_name}", "zip", f"{dataset_dir}/{new_name}")

# ---- cell 5
dataset_dir = "../datasets"
dataset_name = "vehicle"
new_name = "vehicle_coco"

ignore_classes = []
ignore_folders = []
train_split_name = "train"
val_split_name = "valid"
image_folder = "img"
mask_folder = "ann"
remove_json = False

# ---- cell 6
from focoos.data.converters import convert_supervisely_dataset_to_coco

convert_supervisely_dataset_to_coco(
    dataset_dir,
    dataset_name=dataset_name,
    new_name=new_name,
    image_folder=image_folder,
    mask_folder=mask_folder,
    ignore_classes=ignore_classes,
    train_split_name=train_split_name,
    val_split_name=val_split_name,
    remove_json=remove_json,
)

# ---- cell 7
from focoos.data.auto_dataset import AutoDataset
from focoos.data.default_aug import DatasetAugmentations
from focoos.ports import DatasetLayout, DatasetSplitType, Task

task = Task.DETECTION
layout = DatasetLayout.ROBOFLOW_COCO
auto_dataset = AutoDataset(dataset_name=new_name, task=task, layout=layout, datasets_dir=dataset_dir)

augs = DatasetAugmentations(resolution=512)

train_dataset = auto_dataset.get_split(augs=augs.get_augmentations(), split=DatasetSplitType.TRAIN)
valid_dataset = auto_dataset.get_split(augs=augs.get_augmentations(), split=DatasetSplitType.VAL)

# ---- cell 8
valid_dataset.preview()

# ---- cell 9 (the same shell steps as cell 4)
shutil.make_archive(f"{dataset_dir}/{new_name}", "zip", f"{dataset_dir}/{new_name}")

assert len(train_dataset) == 3 and len(valid_dataset) == 3
print("DOC SCRIPT DONE")
