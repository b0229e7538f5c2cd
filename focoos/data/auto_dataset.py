"""AutoDataset finds a dataset on disk (a folder or an archive), checks its layout and opens its splits.

Everything that can be validated without decoding pixels (layout, JSON, categories, boxes, that
every image file exists) is validated when a split is opened, so bad data fails before training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torchvision.transforms import v2

from focoos import settings
from focoos.data.archives import archive_suffix, archives_of, extract_dataset
from focoos.data.augmentations import DatasetAugmentations, compose
from focoos.data.datasets import IGNORE_INDEX, MapDataset
from focoos.data.errors import DatasetError
from focoos.data.readers import (
    class_folders,
    is_image_file,
    read_cls_folder_split,
    read_coco_split,
    read_seg_mask_split,
)
from focoos.ports import DatasetLayout, DatasetSplitType, Task

logger = logging.getLogger("focoos.data")

# Folder names of each split, in the order they are looked for (Focoos' names; it reads no test split).
SPLIT_FOLDERS: dict[DatasetSplitType, tuple[str, ...]] = {
    DatasetSplitType.TRAIN: ("train", "training"),
    DatasetSplitType.VAL: ("valid", "val", "validation"),
    DatasetSplitType.TEST: ("test", "testing"),
}
COCO_ANNOTATION_FILES = ("_annotations.coco.json", "annotations.json")
LAYOUT_TASKS: dict[DatasetLayout, tuple[Task, ...]] = {
    DatasetLayout.ROBOFLOW_COCO: (Task.DETECTION, Task.INSTANCE_SEGMENTATION, Task.KEYPOINT),
    DatasetLayout.ROBOFLOW_SEG: (Task.SEMSEG,),
    DatasetLayout.CLS_FOLDER: (Task.CLASSIFICATION,),
}


class AutoDataset:
    """The dataset `datasets_dir/dataset_name`: a folder with split folders, or an archive of one.

    `dataset_name` may also be a path (absolute, or relative to datasets_dir). An archive
    (`.zip`, `.tar.gz`, `.tgz`, `.tar`) is extracted once into `datasets_dir/<name without suffix>`
    and read from there (a hub download is such an archive). `datasets_dir` defaults to
    `focoos.settings.datasets_dir()`.
    """

    def __init__(
        self,
        dataset_name: str | Path,
        task: Task | str,
        layout: DatasetLayout | str,
        datasets_dir: str | Path | None = None,
    ) -> None:
        try:
            self.task = Task(task)
            self.layout = DatasetLayout(layout)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        if self.layout not in LAYOUT_TASKS:
            supported = ", ".join(layout.value for layout in LAYOUT_TASKS)
            raise DatasetError(f"dataset layout {self.layout.value} is not supported yet (supported: {supported})")
        if self.task not in LAYOUT_TASKS[self.layout]:
            tasks = ", ".join(t.value for t in LAYOUT_TASKS[self.layout])
            raise DatasetError(f"layout {self.layout.value} holds data for task {tasks}, not {self.task.value}")
        self.datasets_dir = Path(datasets_dir if datasets_dir is not None else settings.datasets_dir()).expanduser()
        path = self.datasets_dir / Path(dataset_name).expanduser()
        if not path.is_dir() and not archive_suffix(path):
            # A name whose folder is missing but whose archive is there (a download not yet opened).
            path = next((p for p in archives_of(path) if p.is_file()), path)
        if archive_suffix(path) and not path.is_dir():
            known = tuple(name for names in SPLIT_FOLDERS.values() for name in names)
            path = extract_dataset(path, self.datasets_dir, known)
        if not path.is_dir():
            raise DatasetError(f"dataset folder not found: {path}")
        self.root = path
        self.dataset_path = str(path)  # Focoos' attribute name
        self.dataset_name = path.name
        self._classes: tuple[str, list[str]] | None = None

    def split_dir(self, split: DatasetSplitType | str) -> Path:
        """The folder of a split: train|training, valid|val|validation or test|testing."""
        split = split_type(split)
        for name in SPLIT_FOLDERS[split]:
            if (self.root / name).is_dir():
                return self.root / name
        found = ", ".join(sorted(p.name for p in self.root.iterdir() if p.is_dir())) or "no folders"
        expected = " or ".join(SPLIT_FOLDERS[split])
        raise DatasetError(f"{self.root} has no {split.value} split: expected a folder {expected}, found {found}")

    def get_split(
        self,
        augs: DatasetAugmentations | Sequence[v2.Transform],
        split: DatasetSplitType | str = DatasetSplitType.TRAIN,
    ) -> MapDataset:
        """Open and validate one split.

        With a DatasetAugmentations, the train split gets every augmentation and the other splits
        only the sizing steps. A list of transforms (`augs.get_augmentations()`, as some Focoos
        scripts pass) is applied as given to any split.
        """
        split = split_type(split)
        folder = self.split_dir(split)
        if self.layout == DatasetLayout.ROBOFLOW_COCO:
            annotations = read_coco_split(
                self._coco_json(folder),
                split.value,
                require_segmentation=self.task == Task.INSTANCE_SEGMENTATION,
                require_keypoints=self.task == Task.KEYPOINT,
            )
        elif self.layout == DatasetLayout.ROBOFLOW_SEG:
            annotations = read_seg_mask_split(folder, split.value)
        else:
            self._check_cls_folder(folder)
            annotations = read_cls_folder_split(folder, split.value)
        self._check_same_classes(split, annotations.classes)
        with_boxes = self.task in (Task.DETECTION, Task.INSTANCE_SEGMENTATION, Task.KEYPOINT)
        if isinstance(augs, DatasetAugmentations):
            flips = augs.horizontal_flip or augs.vertical_flip
            if self.task == Task.KEYPOINT and split == DatasetSplitType.TRAIN and flips:
                # A mirror turns a left keypoint into a right one; Focoos' keypoint mapper refuses flips too.
                raise DatasetError("keypoint datasets take no flips: set horizontal_flip and vertical_flip to 0")
            mask_fill = IGNORE_INDEX if self.task == Task.SEMSEG else 0
            transform = augs.build(train=split == DatasetSplitType.TRAIN, with_boxes=with_boxes, mask_fill=mask_fill)
            resolution = augs.resolution_hw
        else:
            transform, resolution = compose(list(augs), with_boxes), None
        return MapDataset(
            annotations.records,
            annotations.classes,
            self.task,
            transform,
            name=self.dataset_name,  # Focoos: the dataset folder, so f"{model}_{data.name}" is one folder
            issues=dict(annotations.issues),
            pixel_values=annotations.pixel_values or None,
            resolution=resolution,
            keypoint_names=annotations.keypoint_names,
            skeleton=annotations.skeleton,
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


def split_type(split: DatasetSplitType | str) -> DatasetSplitType:
    """A DatasetSplitType from itself, its value or one of its folder names ("valid", "training", ...)."""
    if isinstance(split, DatasetSplitType):
        return split
    aliases = {name: kind for kind, names in SPLIT_FOLDERS.items() for name in names}
    try:
        return aliases.get(str(split).lower()) or DatasetSplitType(split)
    except ValueError as exc:
        raise DatasetError(f"unknown split {split!r}: use train, val or test") from exc


__all__ = ["COCO_ANNOTATION_FILES", "LAYOUT_TASKS", "SPLIT_FOLDERS", "AutoDataset", "split_type"]
