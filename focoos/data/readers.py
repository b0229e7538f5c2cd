"""Read a split's annotations into plain records, validating everything before training starts.

A dataset that is wrong should fail when it is opened, with the file or annotation named, not
after an hour of training; fixable defects (boxes partly outside the image, degenerate boxes) are
repaired or dropped and counted, and one summary line per split is logged.
"""

from __future__ import annotations

import csv
import io
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
# Roboflow semantic-segmentation layout: `<stem>_mask.png` beside each image, classes in `_classes.csv`.
SEG_CLASSES_FILE = "_classes.csv"
SEG_MASK_SUFFIX = "_mask.png"
# Class-map PNG modes whose pixel values are the class values as stored (grayscale or palette index).
SEG_MASK_MODES = ("L", "P")
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
    # One COCO segmentation per box (polygon list or RLE dict, as read; None where an annotation has
    # none), or None when the file holds no segmentation at all (a detection-only dataset).
    segmentations: list[Any] | None = None
    # Keypoint datasets: [N, K, 3] float32 (x, y, v) in original pixels, COCO's v (0 unlabeled, 1 occluded, 2 visible).
    keypoints: np.ndarray | None = None


@dataclass
class ClassificationRecord:
    image_id: int
    path: Path
    label: int


@dataclass
class SemanticRecord:
    """One image and its class-map PNG (pixel values as listed in `_classes.csv`), same size."""

    image_id: int
    path: Path
    mask_path: Path
    height: int
    width: int


@dataclass
class SplitAnnotations:
    """What a reader returns: contiguous class names, records, and counts of repaired defects.

    `pixel_values` (semantic layouts only) is the mask pixel value of each class, in class order.
    `keypoint_names` and `skeleton` (keypoint datasets only) come from the COCO categories: the
    names of the K keypoints and the 1-based index pairs joined when drawing.
    """

    classes: list[str]
    records: list[DetectionRecord] | list[ClassificationRecord] | list[SemanticRecord]
    issues: Counter = field(default_factory=Counter)
    pixel_values: list[int] = field(default_factory=list)
    keypoint_names: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _segmentation(ann: dict[str, Any], where: str, height: int, width: int) -> Any:
    """The annotation's COCO segmentation as read, or None when it has none.

    An empty list counts as none: Roboflow's detection exports write `"segmentation": []`.
    """
    seg = ann.get("segmentation")
    if seg is None or (isinstance(seg, list) and not seg):
        return None
    if isinstance(seg, list):
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or not all(map(_is_number, poly)):
                raise DatasetError(
                    f"{where}: 'segmentation' polygons must be lists of at least 6 numbers (x, y pairs), "
                    f"got {str(poly)[:80]}"
                )
        return seg
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not isinstance(counts, str | bytes | list) or not counts:
            raise DatasetError(f"{where}: RLE 'segmentation' needs 'counts' (a string or a list of run lengths)")
        if not isinstance(size, list | tuple) or list(size) != [height, width]:
            raise DatasetError(f"{where}: RLE 'segmentation' size {size!r} is not the image size [{height}, {width}]")
        return seg
    raise DatasetError(
        f"{where}: 'segmentation' must be a list of polygons or an RLE dict with size and counts, "
        f"got {type(seg).__name__}"
    )


def keypoint_schema(categories: list[dict[str, Any]], class_ids: list[int], path: Path) -> tuple[list[str], list]:
    """(keypoint names, skeleton) of a COCO keypoint file: the `keypoints` and `skeleton` of its categories.

    Every class that lists keypoints must list the same ones, since one network predicts one set.
    """
    by_id = {int(cat["id"]): cat for cat in categories}
    listed = [by_id[i] for i in class_ids if by_id[i].get("keypoints")]
    schemas = [(cat.get("keypoints"), cat.get("skeleton") or []) for cat in listed]
    if not schemas:
        raise DatasetError(f"{path}: no category lists its 'keypoints' names: a keypoint dataset needs them")
    names, skeleton = schemas[0]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(f"{path}: category 'keypoints' must be a list of names, got {names!r}")
    if any(other != names for other, _ in schemas):
        raise DatasetError(f"{path}: categories list different keypoints; one model predicts one set of keypoints")
    pairs = skeleton if isinstance(skeleton, list) else None
    if pairs is None or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(i, int) and 1 <= i <= len(names) for i in pair)
        for pair in pairs
    ):
        raise DatasetError(f"{path}: 'skeleton' must be pairs of 1-based keypoint indices, got {str(skeleton)[:80]}")
    return list(names), [list(pair) for pair in pairs]


def _keypoints(ann: dict[str, Any], where: str, count: int) -> list[float]:
    values = ann.get("keypoints")
    if not isinstance(values, list) or len(values) != 3 * count or not all(map(_is_number, values)):
        raise DatasetError(f"{where}: 'keypoints' must be {count} (x, y, v) triplets, got {str(values)[:80]}")
    if any(v not in (0, 1, 2) for v in values[2::3]):
        raise DatasetError(f"{where}: keypoint visibility must be 0, 1 or 2, got {values[2::3]}")
    return values


def read_coco_split(
    json_path: Path, split: str, require_segmentation: bool = False, require_keypoints: bool = False
) -> SplitAnnotations:
    """Parse and validate one COCO annotation file; image paths are resolved and checked up front.

    `require_segmentation` (instance segmentation) makes an annotation without a mask an error,
    since its object could not be a training target. `require_keypoints` (keypoint detection)
    reads the keypoint names from the categories and needs every annotation's `keypoints`.
    """
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
    keypoint_names, skeleton = keypoint_schema(categories, list(class_of), json_path) if require_keypoints else ([], [])

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
    per_image: dict[int, list[tuple[list[float], int, float, bool, Any, Any]]] = {image_id: [] for image_id in order}
    any_segmentation = False
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
        _, height, width = entries[image_id]
        segmentation = _segmentation(ann, where, height, width)
        if segmentation is None and require_segmentation:
            raise DatasetError(f"{where} has no 'segmentation': instance segmentation needs a mask for every object")
        any_segmentation = any_segmentation or segmentation is not None
        keypoints = _keypoints(ann, where, len(keypoint_names)) if require_keypoints else None
        if w <= 0 or h <= 0:
            issues["zero_area"] += 1
            continue
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
        per_image[image_id].append(([x0, y0, x1, y1], class_of[category_id], area, crowd, segmentation, keypoints))

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
                segmentations=[a[4] for a in anns] if any_segmentation else None,
                keypoints=np.asarray([a[5] for a in anns], dtype=np.float32).reshape(len(anns), len(keypoint_names), 3)
                if require_keypoints
                else None,
            )
        )
    log_issues(split, issues)
    return SplitAnnotations(
        classes=classes, records=records, issues=issues, keypoint_names=keypoint_names, skeleton=skeleton
    )


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


def read_seg_classes(csv_path: Path) -> tuple[list[int], list[str]]:
    """(pixel values, class names) of a Roboflow `_classes.csv` ("Pixel Value, Class"), in pixel-value order."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read class file {csv_path}: {exc}") from exc
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(reader, None)
    if header is None or [cell.strip().lower() for cell in header] != ["pixel value", "class"]:
        raise DatasetError(f"class file {csv_path} must start with the header 'Pixel Value, Class', got {header!r}")
    names: dict[int, str] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"class file {csv_path} line {reader.line_num}"
        if len(row) != 2 or not row[0].strip().isdecimal() or not row[1].strip():
            raise DatasetError(f"{where}: expected '<pixel value>, <class name>', got {','.join(row)!r}")
        value, name = int(row[0]), row[1].strip()
        if value > 255:
            raise DatasetError(f"{where}: pixel value {value} does not fit an 8-bit mask")
        if value in names or name in names.values():
            raise DatasetError(f"{where}: pixel value {value} or class {name!r} appears twice")
        names[value] = name
    if not names:
        raise DatasetError(f"class file {csv_path} lists no classes")
    if len(names) > 255:
        raise DatasetError(f"class file {csv_path} lists 256 classes: class index 255 is reserved for 'ignore'")
    values = sorted(names)
    return values, [names[value] for value in values]


def _header_size(path: Path) -> tuple[int, int, str]:
    """(height, width, mode) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as header:
            width, height = header.size
            return int(height), int(width), header.mode
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        raise DatasetError(f"cannot read image {path}: {exc}") from exc


def read_seg_mask_split(split_dir: Path, split: str) -> SplitAnnotations:
    """Roboflow semantic-segmentation split: images, a `<stem>_mask.png` class map for each, `_classes.csv`.

    Classes are the csv rows in pixel-value order; mask pixel values the csv does not list are
    ignored in training and evaluation. Every mask is checked (present, single-channel, image size)
    from the PNG headers, so a bad split fails here.
    """
    csv_path = split_dir / SEG_CLASSES_FILE
    if not csv_path.is_file():
        raise DatasetError(f"{split_dir} does not match layout roboflow_seg: expected {SEG_CLASSES_FILE} in it")
    pixel_values, classes = read_seg_classes(csv_path)
    images = sorted(p for p in split_dir.iterdir() if is_image_file(p) and not p.name.endswith(SEG_MASK_SUFFIX))
    if not images:
        raise DatasetError(f"{split_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    records: list[SemanticRecord] = []
    missing: list[str] = []
    for path in images:
        mask_path = path.with_name(path.stem + SEG_MASK_SUFFIX)
        if not mask_path.is_file():
            missing.append(mask_path.name)
            continue
        height, width, _ = _header_size(path)
        mask_height, mask_width, mode = _header_size(mask_path)
        if mode not in SEG_MASK_MODES:
            raise DatasetError(f"mask {mask_path} must be single-channel (PNG mode L or P), got mode {mode}")
        if (mask_height, mask_width) != (height, width):
            raise DatasetError(
                f"mask {mask_path} is {mask_height}x{mask_width} (HxW) but its image {path.name} is {height}x{width}"
            )
        records.append(SemanticRecord(len(records), path, mask_path, height, width))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"{len(missing)} image(s) in {split_dir} have no mask file: {shown}")
    used = {record.mask_path.name for record in records}
    orphans = [p for p in split_dir.glob(f"*{SEG_MASK_SUFFIX}") if p.name not in used]
    if orphans:
        logger.warning("%s: ignored %d mask files without an image in %s", split, len(orphans), split_dir)
    return SplitAnnotations(classes=classes, records=records, pixel_values=pixel_values)


__all__ = [
    "ClassificationRecord",
    "DetectionRecord",
    "SemanticRecord",
    "SplitAnnotations",
    "coco_class_mapping",
    "keypoint_schema",
    "log_issues",
    "read_cls_folder_split",
    "read_coco_split",
    "read_seg_classes",
    "read_seg_mask_split",
]
