"""MapDataset serves one split's augmented samples, the views evaluation needs, and previews; collate functions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from focoos.data.errors import DatasetError
from focoos.data.readers import ClassificationRecord, DetectionRecord, SemanticRecord
from focoos.ports import Task
from focoos.processing import InvalidInputError, load_image

logger = logging.getLogger("focoos.data")

# Semantic class-map value of pixels that are not scored (unlisted mask values, padding, rotation corners).
IGNORE_INDEX = 255


def _mask_utils() -> Any:
    try:
        from pycocotools import mask as mask_utils
    except ImportError as exc:
        raise DatasetError("pycocotools is needed for segmentation masks: pip install 'focoos[training]'") from exc
    return mask_utils


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Compressed COCO RLE (bytes counts) of a polygon list or an RLE dict (compressed or not)."""
    mask_utils = _mask_utils()
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_segmentations(segmentations: list[Any], height: int, width: int) -> np.ndarray:
    """uint8 [N, H, W] 0/1 masks of COCO segmentations (polygons or RLE)."""
    if not segmentations:
        return np.zeros((0, height, width), dtype=np.uint8)
    mask_utils = _mask_utils()
    rles = [segmentation_to_rle(seg, height, width) for seg in segmentations]
    return np.ascontiguousarray(mask_utils.decode(rles).transpose(2, 0, 1))


class MapDataset(Dataset):
    """Indexable split: decoded, augmented samples plus the un-augmented views evaluation needs.

    Detection items: {"image": uint8 [3,H,W], "boxes": float32 [N,4] xyxy pixels of the augmented
    image, "labels": int64 [N], "image_id": int, "orig_size": (h, w)}. Instance segmentation items
    add "masks": uint8 [N,H,W] 0/1, aligned with boxes and labels; keypoint items add "keypoints": float32
    [N,K,3] (x, y, v) in augmented pixels, v as in COCO (0 unlabeled, also for points the augmentation
    moved off the image; 1 occluded; 2 visible). Semantic segmentation items:
    {"image", "sem_seg": int64 [H,W] class index (IGNORE_INDEX = not scored), "image_id", "orig_size"}.
    Classification items: {"image": uint8 [3,H,W], "label": int64 scalar, "image_id": int}.
    """

    def __init__(
        self,
        records: list[DetectionRecord] | list[ClassificationRecord] | list[SemanticRecord],
        classes: list[str],
        task: Task,
        transform: Any,
        name: str = "dataset",
        issues: dict[str, int] | None = None,
        pixel_values: list[int] | None = None,
        resolution: tuple[int, int] | None = None,
        keypoint_names: list[str] | None = None,
        skeleton: list[list[int]] | None = None,
    ) -> None:
        self._records = records
        self._keypoint_names = list(keypoint_names or [])
        self._skeleton = [list(pair) for pair in skeleton or []]
        self._resolution = resolution
        self._classes = list(classes)
        self._task = task
        self.transform = transform
        self.name = name
        self._issues = {key: count for key, count in (issues or {}).items() if count}
        # Semantic masks store each class as its csv pixel value; this table maps values to class indices.
        values = pixel_values if pixel_values is not None else list(range(min(len(self._classes), IGNORE_INDEX)))
        self._class_of_value = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        self._class_of_value[values] = np.arange(len(values), dtype=np.uint8)

    @property
    def classes(self) -> list[str]:
        """Class names in label order (label i is classes[i])."""
        return list(self._classes)

    @property
    def task(self) -> Task:
        return self._task

    @property
    def keypoint_names(self) -> list[str]:
        """Names of the K keypoints of a keypoint dataset (its COCO categories' `keypoints`); empty otherwise."""
        return list(self._keypoint_names)

    @property
    def skeleton(self) -> list[list[int]]:
        """1-based keypoint index pairs joined when drawing (the COCO categories' `skeleton`)."""
        return [list(pair) for pair in self._skeleton]

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(height, width) every item ends at, when the split was opened with a DatasetAugmentations."""
        return self._resolution

    @property
    def issues(self) -> dict[str, int]:
        """Counts of repaired or dropped annotations found when the split was opened (see readers)."""
        return dict(self._issues)

    def __len__(self) -> int:
        return len(self._records)

    def image_id(self, index: int) -> int:
        return self._records[index].image_id

    def image_path(self, index: int) -> Path:
        return self._records[index].path

    def original_image(self, index: int) -> np.ndarray:
        """The image as stored (RGB uint8 HWC), for evaluation through the inference pipeline."""
        record = self._records[index]
        try:
            image = load_image(record.path)
        except InvalidInputError as exc:
            raise DatasetError(f"cannot read image {record.path}: {exc}") from exc
        if isinstance(record, DetectionRecord | SemanticRecord) and image.shape[:2] != (record.height, record.width):
            raise DatasetError(
                f"image {record.path} is {image.shape[0]}x{image.shape[1]} (HxW) but its annotations say "
                f"{record.height}x{record.width}: the boxes or masks would not match"
            )
        return image

    def semantic_ground_truth(self, index: int) -> np.ndarray:
        """int64 [H,W] class indices at the original image size (IGNORE_INDEX = not scored), for evaluation."""
        record = self._records[index]
        if not isinstance(record, SemanticRecord):
            raise DatasetError(f"semantic_ground_truth needs a semseg dataset, this one is {self._task.value}")
        return self._semantic_mask(record).astype(np.int64)

    def _semantic_mask(self, record: SemanticRecord) -> np.ndarray:
        """uint8 [H,W] class indices of a record's mask PNG (palette PNGs give their palette indices)."""
        try:
            with Image.open(record.mask_path) as png:
                values = np.asarray(png)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
            raise DatasetError(f"cannot read mask {record.mask_path}: {exc}") from exc
        if values.ndim != 2 or values.dtype != np.uint8:
            raise DatasetError(f"mask {record.mask_path} must be a single-channel 8-bit PNG")
        return self._class_of_value[values]

    def __getitem__(self, index: int) -> dict[str, Any]:
        # "file_name": the image's path, the key Focoos' items carry (its tutorials open it)
        return {**self.item(index, self.transform), "file_name": str(self.image_path(index))}

    def item(self, index: int, transform: Any = None) -> dict[str, Any]:
        """Item `index` through `transform` (a v2 transform); None gives the original image and annotations."""
        transform = transform if transform is not None else _unchanged
        record = self._records[index]
        image = self.original_image(index)
        pixels = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        if isinstance(record, ClassificationRecord):
            out = transform(pixels)
            return {
                "image": out.as_subclass(torch.Tensor),
                "label": torch.tensor(record.label, dtype=torch.int64),
                "image_id": record.image_id,
            }
        if isinstance(record, SemanticRecord):
            classes = tv_tensors.Mask(torch.from_numpy(self._semantic_mask(record)))
            out = transform({"image": pixels, "sem_seg": classes})
            return {
                "image": out["image"].as_subclass(torch.Tensor),
                "sem_seg": out["sem_seg"].as_subclass(torch.Tensor).to(torch.int64),
                "image_id": record.image_id,
                "orig_size": (record.height, record.width),
            }
        keep = ~record.crowd
        sample = {
            "image": pixels,
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(record.boxes[keep]), format="XYXY", canvas_size=(record.height, record.width)
            ),
            "labels": torch.from_numpy(record.labels[keep]),
        }
        if self._task == Task.INSTANCE_SEGMENTATION:
            stored = record.segmentations if record.segmentations is not None else [None] * len(keep)
            segmentations = [seg for seg, kept in zip(stored, keep, strict=True) if kept]
            if any(seg is None for seg in segmentations):
                raise DatasetError(f"image {record.path} has objects without a segmentation: instseg needs masks")
            masks = decode_segmentations(segmentations, record.height, record.width)
            sample["masks"] = tv_tensors.Mask(torch.from_numpy(masks))  # SanitizeBoundingBoxes filters it too
        if self._task == Task.KEYPOINT:
            assert record.keypoints is not None
            points = torch.from_numpy(record.keypoints[keep])
            sample["keypoints"] = tv_tensors.KeyPoints(points[..., :2], canvas_size=(record.height, record.width))
            sample["keypoints_visible"] = points[..., 2]  # compose() drops both with their boxes
        out = transform(sample)
        item = {
            "image": out["image"].as_subclass(torch.Tensor),
            "boxes": out["boxes"].as_subclass(torch.Tensor).to(torch.float32).reshape(-1, 4),
            "labels": out["labels"].to(torch.int64),
            "image_id": record.image_id,
            "orig_size": (record.height, record.width),
        }
        if "masks" in out:
            item["masks"] = out["masks"].as_subclass(torch.Tensor).to(torch.uint8)
        if "keypoints" in out:
            item["keypoints"] = _keypoints_on_image(out, item["image"].shape[-2:])
        return item

    def preview(
        self, index: int | list[int] | None = None, use_augmentations: bool = True, path: str | Path | None = None
    ) -> Image.Image:
        """A PIL image of items drawn with their annotations (Focoos' MapDataset.preview).

        `index`: one item, a list of items (drawn side by side), or None for a random one.
        `use_augmentations=False` draws the original image and annotations. `path` also saves it there.
        """
        from focoos.data.preview import draw_item, side_by_side

        if not len(self):
            raise DatasetError(f"{self.name} has no items to preview")
        indices = [int(torch.randint(len(self), (1,)).item())] if index is None else index
        indices = [indices] if isinstance(indices, int) else list(indices)
        for i in indices:
            if not -len(self) <= i < len(self):
                raise DatasetError(f"preview index {i} is out of range: {self.name} has {len(self)} items")
        transform = self.transform if use_augmentations else None
        drawings = [draw_item(self.item(i, transform), self._classes, self._task, self._skeleton, IGNORE_INDEX)
                    for i in indices]
        picture = Image.fromarray(side_by_side(drawings))
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            picture.save(path)
        return picture

    def coco_ground_truth(self) -> dict[str, Any]:
        """COCO dict for COCOeval: category ids are the contiguous labels, boxes in original pixels.

        Annotation ids are renumbered from 1 because COCOeval treats id 0 as "no match".
        Crowd boxes are included with iscrowd=1 (COCOeval ignores detections matched to them).
        Instance segmentation adds each `segmentation` as compressed RLE (str counts, original
        pixels), and `area` is then the mask's pixel count, the area COCO's segm ranges use.
        Keypoint datasets add each object's `keypoints` (x, y, v per keypoint) and `num_keypoints`,
        and the categories their `keypoints` names and `skeleton`.
        """
        if self._task not in (Task.DETECTION, Task.INSTANCE_SEGMENTATION, Task.KEYPOINT):
            raise DatasetError(
                f"coco_ground_truth needs a detection, instseg or keypoint dataset, this one is {self._task.value}"
            )
        with_masks = self._task == Task.INSTANCE_SEGMENTATION
        images, annotations = [], []
        for record in self._records:
            assert isinstance(record, DetectionRecord)
            images.append(
                {"id": record.image_id, "width": record.width, "height": record.height, "file_name": record.path.name}
            )
            segmentations = record.segmentations or [None] * len(record.labels)
            keypoints = record.keypoints if record.keypoints is not None else [None] * len(record.labels)
            for box, label, area, crowd, seg, points in zip(
                record.boxes, record.labels, record.areas, record.crowd, segmentations, keypoints, strict=True
            ):
                x0, y0, x1, y1 = (float(v) for v in box)
                annotation = {
                    "id": len(annotations) + 1,
                    "image_id": record.image_id,
                    "category_id": int(label),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float(area),
                    "iscrowd": int(crowd),
                }
                if with_masks and seg is not None:
                    rle = segmentation_to_rle(seg, record.height, record.width)
                    annotation["area"] = float(_mask_utils().area(rle))
                    annotation["segmentation"] = {"size": [int(v) for v in rle["size"]], "counts": _str(rle["counts"])}
                if points is not None:
                    annotation["keypoints"] = [float(v) for v in points.reshape(-1)]
                    annotation["num_keypoints"] = int((points[:, 2] > 0).sum())  # COCOeval skips objects with none
                annotations.append(annotation)
        categories = [{"id": i, "name": name} for i, name in enumerate(self._classes)]
        if self._task == Task.KEYPOINT:
            categories = [{**cat, "keypoints": self.keypoint_names, "skeleton": self.skeleton} for cat in categories]
        return {"images": images, "annotations": annotations, "categories": categories}


def _unchanged(sample: Any) -> Any:
    return sample


def _keypoints_on_image(out: dict[str, Any], image_hw: Any) -> torch.Tensor:
    """float32 [N,K,3] (x, y, v) of a transformed sample; points moved off the image become unlabeled (v 0)."""
    xy = out["keypoints"].as_subclass(torch.Tensor).to(torch.float32).reshape(len(out["labels"]), -1, 2)
    visible = out["keypoints_visible"].to(torch.float32).reshape(xy.shape[:2])
    height, width = (int(v) for v in image_hw)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= width) & (xy[..., 1] >= 0) & (xy[..., 1] <= height)
    return torch.cat([xy, torch.where(inside, visible, 0.0)[..., None]], dim=-1)


def _str(counts: str | bytes) -> str:
    return counts.decode("ascii") if isinstance(counts, bytes) else counts


def collate_detection(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Stack the (same-size) images; targets stay a list because box counts differ per image."""
    images = torch.stack([item["image"] for item in batch])
    keys = ("boxes", "labels", "keypoints", "image_id", "orig_size")  # keypoints: keypoint datasets only
    targets = [{key: item[key] for key in keys if key in item} for item in batch]
    return images, targets


def collate_segmentation(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Images [B,3,H,W] uint8 and one target dict per image, masks as uint8 [K,H,W] in both tasks.

    Instance items keep {"boxes", "labels", "masks", "image_id", "orig_size"}. Semantic items become
    one binary mask per class present (labels int64 [K], IGNORE_INDEX excluded) plus "sem_seg", so a
    mask-classification loss treats both tasks alike.
    """
    images = torch.stack([item["image"] for item in batch])
    targets = []
    for item in batch:
        if "sem_seg" in item:
            sem_seg = item["sem_seg"]
            labels = torch.unique(sem_seg)
            labels = labels[labels != IGNORE_INDEX]
            masks = (sem_seg[None] == labels[:, None, None]).to(torch.uint8)
            targets.append(
                {
                    "labels": labels,
                    "masks": masks,
                    "sem_seg": sem_seg,
                    "image_id": item["image_id"],
                    "orig_size": item["orig_size"],
                }
            )
        else:
            targets.append({key: item[key] for key in ("boxes", "labels", "masks", "image_id", "orig_size")})
    return images, targets


def collate_classification(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B,3,H,W] uint8 and labels [B] int64."""
    return torch.stack([item["image"] for item in batch]), torch.stack([item["label"] for item in batch])


__all__ = [
    "IGNORE_INDEX",
    "MapDataset",
    "collate_classification",
    "collate_detection",
    "collate_segmentation",
    "decode_segmentations",
    "segmentation_to_rle",
]
