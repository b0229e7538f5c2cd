"""Validation with the same numpy postprocessing as serving.

Detection and instance segmentation are scored by pycocotools (bbox / segm AP), semantic
segmentation by a confusion matrix (mIoU), classification by top-k accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ModelInfo, Task
from focoos.processing import DetectionArrays, decode_mask, label_map, paste_mask, preprocess_images

EVAL_BATCH = 8
EVAL_TOP_K = 100

PRIMARY_METRIC = {
    Task.DETECTION: "bbox/AP",
    Task.INSTANCE_SEGMENTATION: "segm/AP",
    Task.SEMSEG: "sem_seg/mIoU",
    Task.CLASSIFICATION: "classification/top1",
}


@torch.no_grad()
def _network_outputs(network: torch.nn.Module, images: list[np.ndarray], info: ModelInfo) -> dict[str, np.ndarray]:
    device = next(network.parameters()).device
    batch = torch.from_numpy(preprocess_images(images, info.input_hw)).to(device)
    outputs = network(batch)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
    return {name: out.float().cpu().numpy() for name, out in zip(network.output_names, outputs, strict=True)}


def _coco_results(image_id: int, result: DetectionArrays, image_hw: tuple[int, int]) -> list[dict]:
    """COCO result entries of one image: bbox always, the mask as compressed RLE when there is one."""
    from focoos.data import mask_to_rle

    entries = []
    for i, (box, score, cls) in enumerate(zip(result.boxes, result.scores, result.classes, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box)
        entry = {"image_id": image_id, "category_id": int(cls), "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "score": float(score)}
        if result.masks is not None:
            entry["segmentation"] = mask_to_rle(paste_mask(decode_mask(result.masks[i]), box, image_hw))
        entries.append(entry)
    return entries


def evaluate(network: torch.nn.Module, info: ModelInfo, dataset: Any) -> dict[str, float]:
    """Metrics of `network` (put in eval mode for the call) on a MapDataset's original images."""
    from focoos.data import (
        classification_metrics,
        coco_detection_metrics,
        coco_instance_metrics,
        confusion_matrix,
        semantic_metrics,
    )

    was_training = network.training
    network.eval()
    predictions: list[dict] = []
    labels: list[int] = []
    top5: list[list[int]] = []
    confusion = np.zeros((info.num_classes, info.num_classes + 1), dtype=np.int64)  # + unlabeled pixels
    try:
        for start in range(0, len(dataset), EVAL_BATCH):
            indices = range(start, min(start + EVAL_BATCH, len(dataset)))
            images = [dataset.original_image(i) for i in indices]
            outputs = _network_outputs(network, images, info)
            if info.task == Task.CLASSIFICATION:
                order = np.argsort(-outputs["logits"], axis=1)[:, :5]
                top5 += order.tolist()
                labels += [int(dataset[i]["label"]) for i in indices]
                continue
            sizes = [im.shape[:2] for im in images]
            top_k = None if info.task == Task.SEMSEG else EVAL_TOP_K
            results = postprocess_outputs(info, outputs, sizes, 0.0, top_k)
            for i, res, hw in zip(indices, results, sizes, strict=True):
                if info.task == Task.SEMSEG:
                    predicted = label_map(res.boxes, res.masks, res.classes, hw)
                    confusion += confusion_matrix(predicted, dataset.semantic_ground_truth(i), info.num_classes)
                else:
                    predictions += _coco_results(dataset.image_id(i), res, hw)
    finally:
        network.train(was_training)
    if info.task == Task.CLASSIFICATION:
        return classification_metrics(labels, top5)
    if info.task == Task.SEMSEG:
        return semantic_metrics(confusion)
    if info.task == Task.INSTANCE_SEGMENTATION:
        return coco_instance_metrics(dataset.coco_ground_truth(), predictions)
    return coco_detection_metrics(dataset.coco_ground_truth(), predictions)
