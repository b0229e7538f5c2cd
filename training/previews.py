"""Prediction previews at each evaluation (TrainerArgs.samples): one mosaic of annotated validation images.

Focoos' visualization hook does the same with its first `samples` validation images; the picture is
output_dir/run_name/preview/samples_iter_<iteration>.jpg, drawn like `infer(annotate=True)` draws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ModelInfo, Task
from focoos.processing import annotate_image

from .evaluation import EVAL_BATCH, network_outputs

PREVIEW_THRESHOLD = 0.5  # Focoos' preview threshold; semantic maps show every class, as its argmax does
MOSAIC_MAX_SIDE = 3000
JPEG_QUALITY = 80


def annotated_samples(network: torch.nn.Module, info: ModelInfo, dataset: Any, count: int) -> list[np.ndarray]:
    """The first `count` original images of `dataset`, with the network's predictions drawn (RGB)."""
    images = [dataset.original_image(i) for i in range(min(count, len(dataset)))]
    threshold = 0.0 if info.task == Task.SEMSEG else PREVIEW_THRESHOLD
    was_training = network.training
    network.eval()
    annotated = []
    try:
        for start in range(0, len(images), EVAL_BATCH):
            batch = images[start : start + EVAL_BATCH]
            outputs = network_outputs(network, batch, info)
            results = postprocess_outputs(info, outputs, [im.shape[:2] for im in batch], threshold)
            annotated += [
                annotate_image(image, res.boxes, res.scores, res.classes, info.classes, res.masks,
                               draw_boxes=info.task != Task.SEMSEG)
                for image, res in zip(batch, results, strict=True)
            ]
    finally:
        network.train(was_training)
    return annotated


def mosaic(images: list[np.ndarray], max_side: int = MOSAIC_MAX_SIDE) -> np.ndarray:
    """A near-square grid of the images, each fitted (aspect kept) into one cell; the grid fits max_side."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_h = min(max_side // rows, max(im.shape[0] for im in images))
    cell_w = min(max_side // cols, max(im.shape[1] for im in images))
    canvas = np.zeros((rows * cell_h, cols * cell_w, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        scale = min(cell_h / image.shape[0], cell_w / image.shape[1])
        h, w = max(1, int(image.shape[0] * scale)), max(1, int(image.shape[1] * scale))
        top, left = (i // cols) * cell_h, (i % cols) * cell_w
        canvas[top : top + h, left : left + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return canvas


def save_previews(
    network: torch.nn.Module, info: ModelInfo, dataset: Any, count: int, output_dir: Path, iteration: int
) -> Path | None:
    """Write the preview mosaic of this evaluation; None when there is nothing to show."""
    if count <= 0 or dataset is None or len(dataset) == 0:
        return None
    picture = mosaic(annotated_samples(network, info, dataset, count))
    path = Path(output_dir) / "preview" / f"samples_iter_{iteration}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return path
