"""Validation with the same numpy postprocessing as serving, during training and for `FocoosModel.eval`.

Detection, instance segmentation and keypoints are scored by pycocotools (bbox / segm / OKS AP), semantic
segmentation by a confusion matrix (mIoU), classification by top-k accuracy.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from focoos.errors import FocoosError
from focoos.infer.pipeline import postprocess_outputs
from focoos.ports import ArtifactName, FocoosDetections, ModelInfo, Task, TrainerArgs
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


class MetricAccumulator:
    """The task's metrics from one image's answer at a time: one scoring for the training evaluator, the accuracy
    gate and the benchmarks, whatever produced the answers."""

    def __init__(self, info: ModelInfo, dataset: Any) -> None:
        self.info, self.dataset = info, dataset
        self.predictions: list[dict] = []
        self.labels: list[int] = []
        self.top5: list[list[int]] = []
        self.confusion = np.zeros((info.num_classes, info.num_classes + 1), dtype=np.int64)  # + unlabeled pixels

    def add(self, index: int, result: DetectionArrays, image_hw: tuple[int, int]) -> None:
        """The answer for the dataset's image `index` (classification: its classes, best first)."""
        from focoos.data import confusion_matrix

        if self.info.task == Task.CLASSIFICATION:
            order = np.argsort(-np.asarray(result.scores), kind="stable")[:5]
            self.top5.append([int(result.classes[i]) for i in order])
            self.labels.append(int(self.dataset[index]["label"]))
        elif self.info.task == Task.SEMSEG:
            predicted = label_map(result.boxes, result.masks, result.classes, image_hw)
            self.confusion += confusion_matrix(predicted, self.dataset.semantic_ground_truth(index),
                                               self.info.num_classes)
        else:
            self.predictions += _coco_results(self.dataset.image_id(index), result, image_hw)

    def metrics(self) -> dict[str, float]:
        from focoos.data import (
            classification_metrics,
            coco_detection_metrics,
            coco_instance_metrics,
            coco_keypoint_metrics,
            semantic_metrics,
        )

        task = self.info.task
        if task == Task.CLASSIFICATION:
            return classification_metrics(self.labels, self.top5)
        if task == Task.SEMSEG:
            return semantic_metrics(self.confusion)
        ground_truth = self.dataset.coco_ground_truth()
        if task == Task.INSTANCE_SEGMENTATION:
            return coco_instance_metrics(ground_truth, self.predictions)
        if task == Task.KEYPOINT:
            return coco_keypoint_metrics(ground_truth, self.predictions)
        return coco_detection_metrics(ground_truth, self.predictions)


def evaluate(network: torch.nn.Module, info: ModelInfo, dataset: Any, progress: bool = False) -> dict[str, float]:
    """Metrics of `network` (put in eval mode for the call) on a MapDataset's original images; `progress` shows a
    bar over the images (an evaluation of a large split takes minutes)."""
    from tqdm.auto import tqdm

    was_training = network.training
    network.eval()
    scores = MetricAccumulator(info, dataset)
    bar = tqdm(total=len(dataset), desc=f"evaluating {info.name}", unit="img", disable=not progress, leave=False)
    try:
        for start in range(0, len(dataset), EVAL_BATCH):
            indices = range(start, min(start + EVAL_BATCH, len(dataset)))
            bar.update(len(indices))
            images = [dataset.original_image(i) for i in indices]
            outputs = network_outputs(network, images, info)
            sizes = [im.shape[:2] for im in images]
            if info.task == Task.CLASSIFICATION:
                results = [DetectionArrays(None, logits, np.arange(len(logits))) for logits in outputs["logits"]]
            else:
                top_k = None if info.task == Task.SEMSEG else EVAL_TOP_K
                results = postprocess_outputs(info, outputs, sizes, 0.0, top_k)
            for i, res, hw in zip(indices, results, sizes, strict=True):
                scores.add(i, res, hw)
    finally:
        bar.close()
        network.train(was_training)
    return scores.metrics()


def answers_metrics(
    info: ModelInfo, dataset: Any, answer: Callable[[np.ndarray], FocoosDetections]
) -> dict[str, float]:
    """Metrics of what `answer(image)` returns for each of the dataset's original images: FocoosDetections, as
    FocoosModel.infer and the gRPC client give them (threshold 0 for a full precision-recall curve)."""
    scores = MetricAccumulator(info, dataset)
    for i in range(len(dataset)):
        image = dataset.original_image(i)
        scores.add(i, detection_arrays(answer(image)), image.shape[:2])
    return scores.metrics()


def detection_arrays(detections: FocoosDetections) -> DetectionArrays:
    """FocoosDetections -> the arrays the scorers read (boxes as integers, as FocoosDet holds them)."""
    dets = detections.detections
    boxes = None if dets and dets[0].bbox is None else np.array([d.bbox for d in dets], np.float32).reshape(-1, 4)
    masks = [d.mask for d in dets] if dets and dets[0].mask is not None else None
    keypoints = np.array([d.keypoints for d in dets], np.float32) if dets and dets[0].keypoints else None
    return DetectionArrays(boxes, np.array([d.conf for d in dets], np.float32),
                           np.array([d.cls_id for d in dets], np.int64), masks, keypoints)


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


def check_eval_data(model: FocoosModel, data_test: Any) -> None:
    """Refuse a split the model cannot be scored on: another task, class count or keypoint count."""
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


def evaluate_model(
    model: FocoosModel, args: TrainerArgs, data_test: Any, save_json: bool = True
) -> dict[str, float]:
    """Focoos' `FocoosModel.eval`: score the model on a MapDataset split with the training evaluator.

    Writes output_dir/<run_name>_eval/metrics.json (a list with one metrics dict) and model_info.json
    (with val_metrics and val_dataset) unless save_json is False, prints the metrics, records them in
    `model.model_info` and returns them ({"bbox/AP": ..., ...}).
    """
    check_eval_data(model, data_test)
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
