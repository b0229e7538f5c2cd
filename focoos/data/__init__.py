"""Datasets for training and evaluation: layouts on disk, augmentations, collate functions, metrics.

Imports torch and torchvision (the `torch` extra) and pycocotools for the metrics (the `training`
extra, imported only when a metric is computed).
"""

from focoos.data.augmentations import DatasetAugmentations
from focoos.data.coco_eval import classification_metrics, coco_detection_metrics
from focoos.data.datasets import AutoDataset, MapDataset, collate_classification, collate_detection
from focoos.data.errors import DatasetError

__all__ = [
    "AutoDataset",
    "DatasetAugmentations",
    "DatasetError",
    "MapDataset",
    "classification_metrics",
    "coco_detection_metrics",
    "collate_classification",
    "collate_detection",
]
