"""AutoDataset finds a split on disk and checks its layout; MapDataset serves augmented samples.

Everything that can be validated without decoding pixels (layout, JSON, categories, boxes, that
every image file exists) is validated when a split is opened, so bad data fails before training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from focoos.data.augmentations import DatasetAugmentations
from focoos.data.errors import DatasetError
from focoos.data.readers import (
    ClassificationRecord,
    DetectionRecord,
    class_folders,
    is_image_file,
    read_cls_folder_split,
    read_coco_split,
)
from focoos.ports import DatasetLayout, DatasetSplitType, Task
from focoos.processing import InvalidInputError, load_image

logger = logging.getLogger("focoos.data")

SPLIT_FOLDERS: dict[DatasetSplitType, tuple[str, ...]] = {
    DatasetSplitType.TRAIN: ("train", "training"),
    DatasetSplitType.VAL: ("valid", "val", "validation"),
}
COCO_ANNOTATION_FILES = ("_annotations.coco.json", "annotations.json")
LAYOUT_TASKS: dict[DatasetLayout, tuple[Task, ...]] = {
    DatasetLayout.ROBOFLOW_COCO: (Task.DETECTION,),
    DatasetLayout.CLS_FOLDER: (Task.CLASSIFICATION,),
}


class MapDataset(Dataset):
    """Indexable split: decoded, augmented samples plus the un-augmented views evaluation needs.

    Detection items: {"image": uint8 [3,H,W], "boxes": float32 [N,4] xyxy pixels of the augmented
    image, "labels": int64 [N], "image_id": int, "orig_size": (h, w)}. Classification items:
    {"image": uint8 [3,H,W], "label": int64 scalar, "image_id": int}.
    """

    def __init__(
        self,
        records: list[DetectionRecord] | list[ClassificationRecord],
        classes: list[str],
        task: Task,
        transform: Any,
        name: str = "dataset",
        issues: dict[str, int] | None = None,
    ) -> None:
        self._records = records
        self._classes = list(classes)
        self._task = task
        self.transform = transform
        self.name = name
        self._issues = {key: count for key, count in (issues or {}).items() if count}

    @property
    def classes(self) -> list[str]:
        """Class names in label order (label i is classes[i])."""
        return list(self._classes)

    @property
    def task(self) -> Task:
        return self._task

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
        if isinstance(record, DetectionRecord) and image.shape[:2] != (record.height, record.width):
            raise DatasetError(
                f"image {record.path} is {image.shape[0]}x{image.shape[1]} (HxW) but its annotations say "
                f"{record.height}x{record.width}: the boxes would not match"
            )
        return image

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self._records[index]
        image = self.original_image(index)
        pixels = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        if isinstance(record, ClassificationRecord):
            out = self.transform(pixels)
            return {
                "image": out.as_subclass(torch.Tensor),
                "label": torch.tensor(record.label, dtype=torch.int64),
                "image_id": record.image_id,
            }
        keep = ~record.crowd
        sample = {
            "image": pixels,
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(record.boxes[keep]), format="XYXY", canvas_size=(record.height, record.width)
            ),
            "labels": torch.from_numpy(record.labels[keep]),
        }
        out = self.transform(sample)
        return {
            "image": out["image"].as_subclass(torch.Tensor),
            "boxes": out["boxes"].as_subclass(torch.Tensor).to(torch.float32).reshape(-1, 4),
            "labels": out["labels"].to(torch.int64),
            "image_id": record.image_id,
            "orig_size": (record.height, record.width),
        }

    def coco_ground_truth(self) -> dict[str, Any]:
        """COCO dict for COCOeval: category ids are the contiguous labels, boxes in original pixels.

        Annotation ids are renumbered from 1 because COCOeval treats id 0 as "no match".
        Crowd boxes are included with iscrowd=1 (COCOeval ignores detections matched to them).
        """
        if self._task != Task.DETECTION:
            raise DatasetError(f"coco_ground_truth needs a detection dataset, this one is {self._task.value}")
        images, annotations = [], []
        for record in self._records:
            assert isinstance(record, DetectionRecord)
            images.append(
                {"id": record.image_id, "width": record.width, "height": record.height, "file_name": record.path.name}
            )
            for box, label, area, crowd in zip(record.boxes, record.labels, record.areas, record.crowd, strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": record.image_id,
                        "category_id": int(label),
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": float(area),
                        "iscrowd": int(crowd),
                    }
                )
        categories = [{"id": i, "name": name} for i, name in enumerate(self._classes)]
        return {"images": images, "annotations": annotations, "categories": categories}


class AutoDataset:
    """A dataset folder `datasets_dir/dataset_name` with train and validation split folders."""

    def __init__(
        self,
        dataset_name: str,
        task: Task | str,
        layout: DatasetLayout | str,
        datasets_dir: str | Path,
    ) -> None:
        try:
            self.task = Task(task)
            self.layout = DatasetLayout(layout)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        self.dataset_name = dataset_name
        self.root = Path(datasets_dir).expanduser() / dataset_name
        if self.layout not in LAYOUT_TASKS:
            supported = ", ".join(layout.value for layout in LAYOUT_TASKS)
            raise DatasetError(f"dataset layout {self.layout.value} is not supported yet (supported: {supported})")
        if self.task not in LAYOUT_TASKS[self.layout]:
            tasks = ", ".join(t.value for t in LAYOUT_TASKS[self.layout])
            raise DatasetError(f"layout {self.layout.value} holds data for task {tasks}, not {self.task.value}")
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        self._classes: tuple[str, list[str]] | None = None

    def split_dir(self, split: DatasetSplitType | str) -> Path:
        """The folder of a split: train|training, or valid|val|validation."""
        split = _split_type(split)
        for name in SPLIT_FOLDERS[split]:
            if (self.root / name).is_dir():
                return self.root / name
        found = ", ".join(sorted(p.name for p in self.root.iterdir() if p.is_dir())) or "no folders"
        expected = " or ".join(SPLIT_FOLDERS[split])
        raise DatasetError(f"{self.root} has no {split.value} split: expected a folder {expected}, found {found}")

    def get_split(self, augs: DatasetAugmentations, split: DatasetSplitType | str) -> MapDataset:
        """Open and validate one split; training augmentations apply to the train split only."""
        split = _split_type(split)
        folder = self.split_dir(split)
        if self.layout == DatasetLayout.ROBOFLOW_COCO:
            annotations = read_coco_split(self._coco_json(folder), split.value)
        else:
            self._check_cls_folder(folder)
            annotations = read_cls_folder_split(folder, split.value)
        self._check_same_classes(split, annotations.classes)
        transform = augs.build(train=split == DatasetSplitType.TRAIN, with_boxes=self.task == Task.DETECTION)
        return MapDataset(
            annotations.records,
            annotations.classes,
            self.task,
            transform,
            name=f"{self.dataset_name}/{split.value}",
            issues=dict(annotations.issues),
        )

    def _coco_json(self, folder: Path) -> Path:
        for name in COCO_ANNOTATION_FILES:
            if (folder / name).is_file():
                return folder / name
        hint = ""
        if any(any(is_image_file(p) for p in sub.iterdir()) for sub in class_folders(folder)):
            hint = f" (it holds one folder of images per class: layout {DatasetLayout.CLS_FOLDER.value}?)"
        expected = " or ".join(COCO_ANNOTATION_FILES)
        raise DatasetError(f"{folder} does not match layout {self.layout.value}: expected {expected} in it{hint}")

    def _check_cls_folder(self, folder: Path) -> None:
        json_files = [name for name in COCO_ANNOTATION_FILES if (folder / name).is_file()]
        if json_files and not class_folders(folder):
            raise DatasetError(
                f"{folder} does not match layout {self.layout.value}: expected one sub-folder of images per "
                f"class, found {json_files[0]} (layout {DatasetLayout.ROBOFLOW_COCO.value}?)"
            )

    def _check_same_classes(self, split: DatasetSplitType, classes: list[str]) -> None:
        """Labels must mean the same in every split, or validation would score the wrong classes."""
        if self._classes is None:
            self._classes = (split.value, list(classes))
            return
        other, known = self._classes
        if known != list(classes):
            raise DatasetError(
                f"{self.root}: the {split.value} split has classes {classes} but the {other} split has {known}"
            )


def _split_type(split: DatasetSplitType | str) -> DatasetSplitType:
    if isinstance(split, DatasetSplitType):
        return split
    aliases = {name: kind for kind, names in SPLIT_FOLDERS.items() for name in names}
    try:
        return aliases.get(str(split).lower()) or DatasetSplitType(split)
    except ValueError as exc:
        raise DatasetError(f"unknown split {split!r}: use train or val") from exc


def collate_detection(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Stack the (same-size) images; targets stay a list because box counts differ per image."""
    images = torch.stack([item["image"] for item in batch])
    targets = [
        {"boxes": item["boxes"], "labels": item["labels"], "image_id": item["image_id"], "orig_size": item["orig_size"]}
        for item in batch
    ]
    return images, targets


def collate_classification(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B,3,H,W] uint8 and labels [B] int64."""
    return torch.stack([item["image"] for item in batch]), torch.stack([item["label"] for item in batch])


__all__ = ["AutoDataset", "MapDataset", "collate_classification", "collate_detection"]
