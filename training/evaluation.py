"""Validation with the same numpy postprocessing as serving, during training and for `FocoosModel.eval`.

Detection, instance segmentation and keypoints are scored by pycocotools (bbox / segm / OKS AP), semantic
segmentation by a confusion matrix (mIoU), classification by top-k accuracy.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from focoos.errors import FocoosError
from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ArtifactName, ModelInfo, Task, TrainerArgs
from focoos.processing import DetectionArrays, decode_mask, label_map, paste_mask, preprocess_images

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

logger = logging.getLogger("focoos.training")

EVAL_BATCH = 8
EVAL_TOP_K = 100

PRIMARY_METRIC = {
    Task.DETECTION: "bbox/AP",
    Task.INSTANCE_SEGMENTATION: "segm/AP",
    Task.SEMSEG: "sem_seg/mIoU",
    Task.CLASSIFICATION: "classification/top1",
    Task.KEYPOINT: "keypoints/AP",
}


@torch.no_grad()
def network_outputs(network: torch.nn.Module, images: list[np.ndarray], info: ModelInfo) -> dict[str, np.ndarray]:
    device = next(network.parameters()).device
    batch = torch.from_numpy(preprocess_images(images, info.input_hw)).to(device)
    outputs = network(batch)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
    return {name: out.float().cpu().numpy() for name, out in zip(network.output_names, outputs, strict=True)}


def _coco_results(image_id: int, result: DetectionArrays, image_hw: tuple[int, int]) -> list[dict]:
    """COCO result entries of one image: bbox always, the mask as compressed RLE and the keypoints when there are."""
    from focoos.data import mask_to_rle

    entries = []
    for i, (box, score, cls) in enumerate(zip(result.boxes, result.scores, result.classes, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box)
        entry = {"image_id": image_id, "category_id": int(cls), "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "score": float(score)}
        if result.masks is not None:
            entry["segmentation"] = mask_to_rle(paste_mask(decode_mask(result.masks[i]), box, image_hw))
        if result.keypoints is not None:
            entry["keypoints"] = result.keypoints[i].reshape(-1).tolist()  # (x, y, score) per keypoint
        entries.append(entry)
    return entries


def evaluate(network: torch.nn.Module, info: ModelInfo, dataset: Any, progress: bool = False) -> dict[str, float]:
    """Metrics of `network` (put in eval mode for the call) on a MapDataset's original images; `progress` shows a
    bar over the images (an evaluation of a large split takes minutes)."""
    from tqdm.auto import tqdm

    from focoos.data import (
        classification_metrics,
        coco_detection_metrics,
        coco_instance_metrics,
        coco_keypoint_metrics,
        confusion_matrix,
        semantic_metrics,
    )

    was_training = network.training
    network.eval()
    predictions: list[dict] = []
    labels: list[int] = []
    top5: list[list[int]] = []
    confusion = np.zeros((info.num_classes, info.num_classes + 1), dtype=np.int64)  # + unlabeled pixels
    bar = tqdm(total=len(dataset), desc=f"evaluating {info.name}", unit="img", disable=not progress, leave=False)
    try:
        for start in range(0, len(dataset), EVAL_BATCH):
            indices = range(start, min(start + EVAL_BATCH, len(dataset)))
            bar.update(len(indices))
            images = [dataset.original_image(i) for i in indices]
            outputs = network_outputs(network, images, info)
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
        bar.close()
        network.train(was_training)
    if info.task == Task.CLASSIFICATION:
        return classification_metrics(labels, top5)
    if info.task == Task.SEMSEG:
        return semantic_metrics(confusion)
    if info.task == Task.INSTANCE_SEGMENTATION:
        return coco_instance_metrics(dataset.coco_ground_truth(), predictions)
    if info.task == Task.KEYPOINT:
        return coco_keypoint_metrics(dataset.coco_ground_truth(), predictions)
    return coco_detection_metrics(dataset.coco_ground_truth(), predictions)


def finite_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """pycocotools reports -1 (NaN here) for an empty area range: keep only real numbers."""
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def format_metrics(metrics: dict[str, float], title: str | None = None) -> str:
    """The metrics as one table for the console: a header, then one `name  value` row per metric."""
    width = max([len(k) for k in metrics] + [len("METRIC")])
    lines = [title] if title else []
    lines += [f"{'METRIC':<{width}}  {'VALUE':>8}", f"{'-' * width}  {'-' * 8}"]
    lines += [f"{name:<{width}}  {value:>8.4f}" for name, value in metrics.items()]
    return "\n".join(lines)


def training_device(device: str, rank: int = 0) -> torch.device:
    """TrainerArgs.device on this machine: cuda (or auto) falls back to the CPU when CUDA is absent."""
    if device in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device(f"cuda:{rank}")
        if device == "cuda":
            logger.warning("device=cuda but CUDA is not available: running on the CPU")
        return torch.device("cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        logger.warning("device=mps but MPS is not available: running on the CPU")
        return torch.device("cpu")
    return torch.device(device)


def evaluate_model(
    model: FocoosModel, args: TrainerArgs, data_test: Any, save_json: bool = True
) -> dict[str, float]:
    """Focoos' `FocoosModel.eval`: score the model on a MapDataset split with the training evaluator.

    Writes output_dir/<run_name>_eval/metrics.json (a list with one metrics dict) and model_info.json
    (with val_metrics and val_dataset) unless save_json is False, prints the metrics, records them in
    `model.model_info` and returns them ({"bbox/AP": ..., ...}).
    """
    if data_test.task != model.task:
        raise FocoosError(f"{model.name} does {model.task.value}, the test data is {data_test.task.value}")
    if len(data_test.classes) != model.model_info.num_classes:
        raise FocoosError(f"{model.name} has {model.model_info.num_classes} classes, the test data "
                          f"{len(data_test.classes)}: train it on this dataset first")
    num_keypoints = len(getattr(data_test, "keypoint_names", []))
    if model.task == Task.KEYPOINT and num_keypoints != model.model.num_keypoints:
        raise FocoosError(f"{model.name} predicts {model.model.num_keypoints} keypoints, the test data has "
                          f"{num_keypoints}: train it on this dataset first")
    if list(data_test.classes) != model.classes:
        logger.warning("the test data names its classes %s, the model %s: scoring by class index",
                       data_test.classes, model.classes)
    network, home = model.model, model.device
    network.to(training_device(args.device))
    try:
        metrics = finite_metrics(evaluate(network, model.model_info, data_test, progress=True))
    finally:
        network.to(home)
    split = getattr(data_test, "name", None)
    print(format_metrics(metrics, f"{model.name} on {split or 'the test data'} ({len(data_test)} images)"))
    info = model.model_info.model_copy(update={"val_metrics": metrics, "val_dataset": getattr(data_test, "name", None)})
    model.replace_network(network, info)
    if save_json:
        eval_dir = Path(args.output_dir) / f"{args.run_name.strip()}_eval"
        eval_dir.mkdir(parents=True, exist_ok=True)
        (eval_dir / ArtifactName.METRICS.value).write_text(json.dumps([metrics]))
        info.dump_json(eval_dir / ArtifactName.INFO.value)
        logger.info("evaluation of %s written to %s", model.name, eval_dir)
    return metrics
