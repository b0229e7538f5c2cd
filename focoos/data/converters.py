"""Focoos' dataset converters: Supervisely / DatasetNinja exports to the layouts AutoDataset reads.

- `convert_datasetninja_to_mask_dataset`: bitmap annotations -> Roboflow semantic masks (ROBOFLOW_SEG):
  `<new_name>/{train,val}/` with each image, its `<stem>_mask.png` and `_classes.csv`.
- `convert_supervisely_dataset_to_coco`: rectangle (and bitmap) annotations -> Roboflow COCO (ROBOFLOW_COCO):
  `<new_name>/{train,val}/` with the images and `_annotations.coco.json`.

Input (DatasetNinja downloads are Supervisely projects)::

    <dataset_root>/<dataset_name>/meta.json            {"classes": [{"title": ...}, ...]}
    <dataset_root>/<dataset_name>/<split>/<image_folder>/<image>
    <dataset_root>/<dataset_name>/<split>/<mask_folder>/<image>.json
        {"size": {"height", "width"}, "objects": [{"classTitle", "geometryType": "bitmap" | "rectangle",
          "bitmap": {"origin": [x, y], "data": base64(zlib(PNG whose alpha is the mask))},
          "points": {"exterior": [[x1, y1], [x2, y2]]}}]}

Pixel values in the masks are the row numbers of `_classes.csv`; pixels of no class (without background)
and of ignored classes are 255, the value training ignores.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from focoos.data.readers import IMAGE_EXTENSIONS
from focoos.utils.logger import get_logger

__all__ = ["convert_datasetninja_to_mask_dataset", "convert_supervisely_dataset_to_coco", "supervisely_bitmap"]

IGNORE_VALUE = 255
logger = get_logger("converters")


def _class_titles(meta_json: Path, ignore_classes: list[str]) -> list[str]:
    """Class titles of a Supervisely project in meta.json order, without the ignored ones."""
    data = json.loads(meta_json.read_text(encoding="utf-8"))
    return [c["title"] for c in data.get("classes", []) if c["title"] not in ignore_classes]


def supervisely_bitmap(data: str) -> np.ndarray:
    """A Supervisely bitmap (base64 of zlib of a PNG) as a boolean mask: its alpha channel, else its pixels."""
    png = zlib.decompress(base64.b64decode(data))
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("Supervisely bitmap is not a PNG")
    if image.ndim == 3:
        image = image[:, :, 3] if image.shape[2] == 4 else image.max(axis=2)
    return image > 0


def _paste(canvas: np.ndarray, mask: np.ndarray, origin: list[int], value: int) -> None:
    x, y = int(origin[0]), int(origin[1])
    h, w = min(mask.shape[0], canvas.shape[0] - y), min(mask.shape[1], canvas.shape[1] - x)
    if h > 0 and w > 0:
        canvas[y : y + h, x : x + w][mask[:h, :w]] = value


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _annotation(mask_folder: Path, image: Path) -> dict[str, Any] | None:
    path = mask_folder / f"{image.name}.json"
    if not path.is_file():
        logger.warning("no annotation %s: image skipped", path)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _splits(train_split_name: str, val_split_name: str) -> list[tuple[str, str]]:
    return [(train_split_name, "train"), (val_split_name, "val")]


def convert_datasetninja_to_mask_dataset(
    dataset_root: str,
    dataset_name: str,
    new_name: str,
    image_folder: str,
    mask_folder: str,
    ignore_folders: list[str] | None = None,
    use_background: bool = True,
    ignore_classes: list[str] | None = None,
    train_split_name: str = "train",
    val_split_name: str = "val",
    remove_json: bool = False,
) -> Path:
    """Write `<dataset_root>/<new_name>` in the Roboflow semantic-mask layout; returns that folder.

    With `use_background`, class 0 is "background" (pixels no object covers); without it those pixels are 255.
    `ignore_folders` are splits never read; `remove_json` deletes each annotation file once converted.
    """
    source, target = Path(dataset_root) / dataset_name, Path(dataset_root) / new_name
    ignored = list(ignore_classes or [])
    titles = (["background"] if use_background else []) + _class_titles(source / "meta.json", ignored)
    value_of = {title: i for i, title in enumerate(titles)}
    for split, out_name in _splits(train_split_name, val_split_name):
        if split in (ignore_folders or []):
            continue
        out = target / out_name
        out.mkdir(parents=True, exist_ok=True)
        (out / "_classes.csv").write_text("Pixel Value,Class\n" + "".join(f"{i},{t}\n" for i, t in enumerate(titles)))
        for image in _images(source / split / image_folder):
            ann = _annotation(source / split / mask_folder, image)
            if ann is None:
                continue
            height, width = ann["size"]["height"], ann["size"]["width"]
            canvas = np.full((height, width), 0 if use_background else IGNORE_VALUE, dtype=np.uint8)
            for obj in ann.get("objects", []):
                title, geometry = obj["classTitle"], obj["geometryType"]
                value = IGNORE_VALUE if title in ignored else value_of.get(title, IGNORE_VALUE)
                if geometry == "bitmap":
                    _paste(canvas, supervisely_bitmap(obj["bitmap"]["data"]), obj["bitmap"]["origin"], value)
                elif geometry == "rectangle":
                    (x1, y1), (x2, y2) = obj["points"]["exterior"]
                    canvas[int(y1) : int(y2), int(x1) : int(x2)] = value
                else:
                    logger.warning("%s: geometry %s not supported, object skipped", image.name, geometry)
            shutil.copy(image, out / image.name)
            cv2.imwrite(str(out / f"{image.stem}_mask.png"), canvas)
            if remove_json:
                (source / split / mask_folder / f"{image.name}.json").unlink()
    logger.info("converted %s -> %s (%d classes)", source, target, len(titles))
    return target


def _box(obj: dict[str, Any]) -> list[float]:
    """xywh of a rectangle or bitmap object."""
    if obj["geometryType"] == "rectangle":
        (x1, y1), (x2, y2) = obj["points"]["exterior"]
        return [float(min(x1, x2)), float(min(y1, y2)), float(abs(x2 - x1)), float(abs(y2 - y1))]
    if obj["geometryType"] == "bitmap":
        mask = supervisely_bitmap(obj["bitmap"]["data"])
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        x, y = obj["bitmap"]["origin"]
        return [float(x + cols[0]), float(y + rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
    raise ValueError(f"Unsupported geometry type: {obj['geometryType']}")


def convert_supervisely_dataset_to_coco(
    dataset_root: str,
    dataset_name: str,
    new_name: str,
    image_folder: str,
    mask_folder: str,
    ignore_classes: list[str] | None = None,
    train_split_name: str = "train",
    val_split_name: str = "val",
    remove_json: bool = False,
) -> Path:
    """Write `<dataset_root>/<new_name>` in the Roboflow COCO layout (category ids from 1, as Focoos writes
    them); returns that folder. Objects of ignored classes are dropped."""
    source, target = Path(dataset_root) / dataset_name, Path(dataset_root) / new_name
    titles = _class_titles(source / "meta.json", list(ignore_classes or []))
    category_of = {title: i + 1 for i, title in enumerate(titles)}
    categories = [{"id": i, "name": t, "supercategory": "superclass"} for t, i in category_of.items()]
    info = {"year": str(datetime.date.today().year), "description": "Converted with focoos.data.converters",
            "date_created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for split, out_name in _splits(train_split_name, val_split_name):
        out = target / out_name
        out.mkdir(parents=True, exist_ok=True)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image in _images(source / split / image_folder):
            ann = _annotation(source / split / mask_folder, image)
            if ann is None:
                continue
            image_id = len(images)
            images.append({"id": image_id, "file_name": image.name,
                           "height": ann["size"]["height"], "width": ann["size"]["width"]})
            shutil.copy(image, out / image.name)
            for obj in ann.get("objects", []):
                if obj["classTitle"] not in category_of:
                    continue
                box = _box(obj)
                annotations.append({"id": len(annotations), "image_id": image_id,
                                    "category_id": category_of[obj["classTitle"]], "bbox": box,
                                    "area": box[2] * box[3], "segmentation": [], "iscrowd": 0})
            if remove_json:
                (source / split / mask_folder / f"{image.name}.json").unlink()
        coco = {"info": info, "categories": categories, "images": images, "annotations": annotations}
        (out / "_annotations.coco.json").write_text(json.dumps(coco))
    logger.info("converted %s -> %s (%d classes)", source, target, len(titles))
    return target
