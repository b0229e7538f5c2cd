"""Datasets for training and evaluation: layouts on disk, augmentations, collate functions, metrics.

Focoos' import paths work too: `focoos.data.auto_dataset.AutoDataset`,
`focoos.data.default_aug.DatasetAugmentations` and `get_default_by_task`.

Imports torch and torchvision (the `torch` extra) and pycocotools for the metrics (the `training`
extra, imported only when a metric is computed).
"""

from focoos.data.augmentations import DatasetAugmentations
from focoos.data.auto_dataset import AutoDataset
from focoos.data.coco_eval import (
    classification_metrics,
    coco_detection_metrics,
    coco_instance_metrics,
    coco_keypoint_metrics,
    confusion_matrix,
    keypoint_sigmas,
    mask_to_rle,
    semantic_metrics,
)
from focoos.data.datasets import (
    IGNORE_INDEX,
    MapDataset,
    collate_classification,
    collate_detection,
    collate_segmentation,
    decode_segmentations,
    segmentation_to_rle,
)
from focoos.data.default_aug import get_default_by_task
from focoos.data.errors import DatasetError
from focoos.data.readers import SemanticRecord, read_seg_mask_split

__all__ = [
    "IGNORE_INDEX",
    "AutoDataset",
    "DatasetAugmentations",
    "DatasetError",
    "MapDataset",
    "SemanticRecord",
    "classification_metrics",
    "coco_detection_metrics",
    "coco_instance_metrics",
    "coco_keypoint_metrics",
    "collate_classification",
    "collate_detection",
    "collate_segmentation",
    "confusion_matrix",
    "mask_to_rle",
    "decode_segmentations",
    "get_default_by_task",
    "keypoint_sigmas",
    "read_seg_mask_split",
    "segmentation_to_rle",
    "semantic_metrics",
]
