"""Focoos' default augmentations per task (`get_default_by_task`), importable from Focoos' module path."""

from __future__ import annotations

from focoos.data.augmentations import DatasetAugmentations
from focoos.ports import Task, to_hw

# Training presets by task: (standard, advanced). Values are Focoos'; the comments give the ranges.
_TRAIN_PRESETS: dict[Task, tuple[dict, dict]] = {
    Task.DETECTION: (
        # max_size: 1.25 x the resolution (set below); scale 0.71-1.41
        {"square": 1.0, "crop": True, "scale_ratio": 0.5, "color_augmentation": 1.0, "horizontal_flip": 0.5},
        {
            "color_augmentation": 1.0,
            "horizontal_flip": 0.5,
            "aspect_ratio": 0.5,
            "zoom_out": 0.5,
            "zoom_out_side": 4.0,
            "square": 1.0,
            "scale_ratio": 0.5,
        },
    ),
    Task.SEMSEG: (
        {"crop": True, "scale_ratio": 0.5, "color_augmentation": 1.0, "horizontal_flip": 0.5},
        {"crop": True, "scale_ratio": 1.0, "max_size": 2048, "color_augmentation": 1.0, "horizontal_flip": 0.5},
    ),
    Task.INSTANCE_SEGMENTATION: (
        {"crop": True, "scale_ratio": 0.5, "color_augmentation": 1.0, "horizontal_flip": 0.5},
        {"crop": True, "scale_ratio": 1.0, "max_size": 2048, "color_augmentation": 1.0, "horizontal_flip": 0.5},
    ),
    Task.CLASSIFICATION: (
        {"scale_ratio": 0.5, "crop": True, "color_augmentation": 1.0, "horizontal_flip": 0.5},
        {"scale_ratio": 0.5, "crop": True, "color_augmentation": 1.0, "horizontal_flip": 0.5},
    ),
    Task.KEYPOINT: (
        {"crop": True, "scale_ratio": 0.5, "color_augmentation": 1.0},
        {"crop": True, "scale_ratio": 0.5, "color_augmentation": 1.0},
    ),
}
# Validation presets: detection resizes straight to the square, as its inference does.
_VAL_PRESETS: dict[Task, dict] = {Task.DETECTION: {"square": 1.0}}


def get_default_by_task(
    task: Task | str, resolution: int | tuple[int, int] = 640, advanced: bool = False
) -> tuple[DatasetAugmentations, DatasetAugmentations]:
    """(train, val) augmentations Focoos uses for a task at a resolution; `advanced` picks its stronger recipe.

    Each call returns new objects, so changing one never changes the next call's defaults.
    """
    task = Task(task)
    train = dict(_TRAIN_PRESETS[task][1 if advanced else 0])
    if task == Task.DETECTION and not advanced:
        train["max_size"] = int(max(to_hw(resolution)) * 1.25)
    val = _VAL_PRESETS.get(task, {})
    return DatasetAugmentations(resolution=resolution, **train), DatasetAugmentations(resolution=resolution, **val)


__all__ = ["DatasetAugmentations", "get_default_by_task"]
