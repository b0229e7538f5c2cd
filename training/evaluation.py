"""Validation with the same numpy postprocessing as serving, scored by pycocotools (detection) or top-k accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ModelInfo, Task
from focoos.processing import preprocess_images

EVAL_BATCH = 8
EVAL_TOP_K = 100

PRIMARY_METRIC = {Task.DETECTION: "bbox/AP", Task.CLASSIFICATION: "classification/top1"}


@torch.no_grad()
def _network_outputs(network: torch.nn.Module, images: list[np.ndarray], info: ModelInfo) -> dict[str, np.ndarray]:
    device = next(network.parameters()).device
    batch = torch.from_numpy(preprocess_images(images, info.input_hw)).to(device)
    outputs = network(batch)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
    return {name: out.float().cpu().numpy() for name, out in zip(network.output_names, outputs, strict=True)}


def evaluate(network: torch.nn.Module, info: ModelInfo, dataset: Any) -> dict[str, float]:
    """Metrics of `network` (put in eval mode for the call) on a MapDataset's original images."""
    from focoos.data import classification_metrics, coco_detection_metrics

    was_training = network.training
    network.eval()
    predictions: list[dict] = []
    labels: list[int] = []
    top5: list[list[int]] = []
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
            results = postprocess_outputs(info, outputs, [im.shape[:2] for im in images], 0.0, EVAL_TOP_K)
            for i, res in zip(indices, results, strict=True):
                for box, score, cls in zip(res.boxes, res.scores, res.classes, strict=True):
                    x1, y1, x2, y2 = (float(v) for v in box)
                    predictions.append({"image_id": dataset.image_id(i), "category_id": int(cls),
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    finally:
        network.train(was_training)
    if info.task == Task.CLASSIFICATION:
        return classification_metrics(labels, top5)
    return coco_detection_metrics(dataset.coco_ground_truth(), predictions)
