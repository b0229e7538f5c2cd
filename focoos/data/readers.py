"""Read a split's annotations into plain records, validating everything before training starts.

A dataset that is wrong should fail when it is opened, with the file or annotation named, not
after an hour of training; fixable defects (boxes partly outside the image, degenerate boxes) are
repaired or dropped and counted, and one summary line per split is logged.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from focoos.data.errors import DatasetError

logger = logging.getLogger("focoos.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Messages of the per-split summary, by issue key; all but "crowd" are defects of the data.
ISSUE_MESSAGES = {
    "clipped": "clipped {n} boxes extending outside the image",
    "zero_area": "skipped {n} boxes with zero area",
    "outside": "skipped {n} boxes entirely outside the image",
    "crowd": "kept {n} crowd annotations for evaluation only",
}


@dataclass
class DetectionRecord:
    """One image and its boxes in original pixels (xyxy, already clipped to the image)."""

    image_id: int
    path: Path
    height: int
    width: int
    boxes: np.ndarray  # [N, 4] float32
    labels: np.ndarray  # [N] int64, contiguous 0..C-1
    areas: np.ndarray  # [N] float64, for COCOeval's small/medium/large ranges
    crowd: np.ndarray  # [N] bool; crowd boxes are not training targets


@dataclass
class ClassificationRecord:
    image_id: int
    path: Path
    label: int


@dataclass
class SplitAnnotations:
    """What a reader returns: contiguous class names, records, and counts of repaired defects."""

    classes: list[str]
    records: list[DetectionRecord] | list[ClassificationRecord]
    issues: Counter = field(default_factory=Counter)


def log_issues(split: str, issues: Counter) -> None:
    """One summary line per split, so a dataset with thousands of bad boxes does not flood the log."""
    parts = [ISSUE_MESSAGES[key].format(n=issues[key]) for key in ISSUE_MESSAGES if issues.get(key)]
    if parts:
        logger.warning("%s: %s", split, "; ".join(parts))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read annotation file {path}: {exc}") from exc
    if not text.strip():
        raise DatasetError(f"annotation file {path} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"annotation file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"annotation file {path} must hold a JSON object, got {type(data).__name__}")
    return data


def _int_field(item: Any, key: str, where: str) -> int:
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise DatasetError(f"{where}: '{key}' must be an integer, got {value!r}")
    return int(value)


def coco_class_mapping(categories: list[dict[str, Any]], used_ids: set[int], path: Path) -> dict[int, int]:
    """Map COCO category ids to contiguous labels 0..C-1 in id order.

    Rule: every category is a class except a "parent" category, one whose name is the
    `supercategory` of another category, when no annotation of this file uses it. That drops the
    Roboflow export's id-0 group category ("digits", supercategory of "0".."9") while a real class
    that happens to share its name with a supercategory, and is annotated, survives.
    """
    by_id: dict[int, dict[str, Any]] = {}
    for index, cat in enumerate(categories):
        cat_id = _int_field(cat, "id", f"{path}: category #{index}")
        if cat_id in by_id:
            raise DatasetError(f"{path}: category id {cat_id} appears twice")
        if not isinstance(cat.get("name"), str) or not cat["name"]:
            raise DatasetError(f"{path}: category {cat_id} has no name")
        by_id[cat_id] = cat
    parent_names = {
        cat.get("supercategory") for cat in by_id.values() if cat.get("supercategory") not in (None, "", "none")
    }
    kept = [
        cat_id
        for cat_id, cat in sorted(by_id.items())
        if cat_id in used_ids or not (cat["name"] in parent_names and _has_children(cat, by_id))
    ]
    if not kept:
        raise DatasetError(f"{path}: no usable categories (only group categories)")
    return {cat_id: label for label, cat_id in enumerate(kept)}


def _has_children(cat: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> bool:
    return any(other is not cat and other.get("supercategory") == cat["name"] for other in by_id.values())


def _resolve_image(split_dir: Path, file_name: str) -> Path | None:
    """Images sit beside the JSON (Roboflow) or in an images/ sub-folder (plain COCO exports)."""
    for candidate in (split_dir / file_name, split_dir / "images" / file_name):
        if candidate.is_file():
            return candidate
    return None


def _image_size(path: Path, image: dict[str, Any]) -> tuple[int, int]:
    height, width = image.get("height"), image.get("width")
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    try:
        with Image.open(path) as header:  # reads the header only
            width, height = header.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    return int(height), int(width)


def _bbox(ann: dict[str, Any], where: str) -> tuple[float, float, float, float]:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height], got {bbox!r}")
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: 'bbox' must hold numbers, got {bbox!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise DatasetError(f"{where}: 'bbox' must hold finite numbers, got {bbox!r}")
    return values  # type: ignore[return-value]


def read_coco_split(json_path: Path, split: str) -> SplitAnnotations:
    """Parse and validate one COCO annotation file; image paths are resolved and checked up front."""
    data = _read_json(json_path)
    images, categories = data.get("images"), data.get("categories")
    annotations = data.get("annotations", [])
    for key, value in (("images", images), ("categories", categories), ("annotations", annotations)):
        if not isinstance(value, list):
            raise DatasetError(f"annotation file {json_path} has no '{key}' list")
    if not categories:
        raise DatasetError(f"annotation file {json_path} lists no categories")
    split_dir = json_path.parent

    used_ids = {ann.get("category_id") for ann in annotations if isinstance(ann, dict)}
    class_of = coco_class_mapping(categories, used_ids, json_path)
    names = {int(cat["id"]): cat["name"] for cat in categories}
    classes = [names[cat_id] for cat_id in class_of]

    entries: dict[int, tuple[Path, int, int]] = {}
    order: list[int] = []
    seen: set[int] = set()
    missing: list[str] = []
    for index, image in enumerate(images):
        image_id = _int_field(image, "id", f"{json_path}: image #{index}")
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DatasetError(f"{json_path}: image {image_id} has no file_name")
        if image_id in seen:
            raise DatasetError(f"{json_path}: image id {image_id} appears twice")
        seen.add(image_id)
        order.append(image_id)
        path = _resolve_image(split_dir, file_name)
        if path is None:
            missing.append(str(split_dir / file_name))
            continue
        entries[image_id] = (path, *_image_size(path, image))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"{len(missing)} image file(s) listed in {json_path} are missing: {shown}")

    issues: Counter = Counter()
    per_image: dict[int, list[tuple[list[float], int, float, bool]]] = {image_id: [] for image_id in order}
    for index, ann in enumerate(annotations):
        ann_id = ann.get("id", f"#{index}") if isinstance(ann, dict) else f"#{index}"
        where = f"{json_path}: annotation {ann_id}"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where} is not a JSON object")
        image_id = ann.get("image_id")
        if image_id not in entries:
            raise DatasetError(f"{where} refers to unknown image id {image_id!r}")
        category_id = ann.get("category_id")
        if category_id not in class_of:
            known = ", ".join(str(c) for c in class_of)
            raise DatasetError(f"{where} has unknown category id {category_id!r} (known: {known})")
        x, y, w, h = _bbox(ann, where)
        if w <= 0 or h <= 0:
            issues["zero_area"] += 1
            continue
        _, height, width = entries[image_id]
        x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
        x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
        if x1 <= x0 or y1 <= y0:
            issues["outside"] += 1
            continue
        clipped = (x0, y0, x1, y1) != (x, y, x + w, y + h)
        issues["clipped"] += int(clipped)
        crowd = bool(ann.get("iscrowd", 0))
        issues["crowd"] += int(crowd)
        area = ann.get("area")
        area = float(area) if isinstance(area, int | float) and area > 0 and not clipped else (x1 - x0) * (y1 - y0)
        per_image[image_id].append(([x0, y0, x1, y1], class_of[category_id], area, crowd))

    records = []
    for image_id in order:
        path, height, width = entries[image_id]
        anns = per_image[image_id]
        records.append(
            DetectionRecord(
                image_id=image_id,
                path=path,
                height=height,
                width=width,
                boxes=np.asarray([a[0] for a in anns], dtype=np.float32).reshape(-1, 4),
                labels=np.asarray([a[1] for a in anns], dtype=np.int64),
                areas=np.asarray([a[2] for a in anns], dtype=np.float64),
                crowd=np.asarray([a[3] for a in anns], dtype=bool),
            )
        )
    log_issues(split, issues)
    return SplitAnnotations(classes=classes, records=records, issues=issues)


def class_folders(split_dir: Path) -> list[Path]:
    """Sub-folders of a cls_folder split, one per class, in name order (hidden ones skipped)."""
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def read_cls_folder_split(split_dir: Path, split: str) -> SplitAnnotations:
    """One sub-folder per class (name order = label order); images found recursively inside each."""
    folders = class_folders(split_dir)
    if not folders:
        raise DatasetError(f"{split_dir} does not match layout cls_folder: expected one sub-folder of images per class")
    records: list[ClassificationRecord] = []
    for label, folder in enumerate(folders):
        for path in sorted(p for p in folder.rglob("*") if is_image_file(p)):
            records.append(ClassificationRecord(image_id=len(records), path=path, label=label))
    if not records:
        raise DatasetError(f"{split_dir} holds no images in its class folders ({', '.join(IMAGE_EXTENSIONS)})")
    loose = [p.name for p in split_dir.iterdir() if is_image_file(p)]
    if loose:
        logger.warning("%s: ignored %d images outside the class folders of %s", split, len(loose), split_dir)
    return SplitAnnotations(classes=[f.name for f in folders], records=records)


__all__ = [
    "ClassificationRecord",
    "DetectionRecord",
    "SplitAnnotations",
    "coco_class_mapping",
    "log_issues",
    "read_cls_folder_split",
    "read_coco_split",
]
