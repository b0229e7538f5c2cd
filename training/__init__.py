"""focoos.training: trainer, losses, evaluation and distributed workers that produce model weights.

Entry point: `FocoosModel.train(args, data_train, data_val)` calls `train` below.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from focoos.errors import FocoosError
from focoos.models import build_network
from focoos.ports import ModelInfo, TrainerArgs
from focoos.weights import load_weights

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

logger = logging.getLogger("focoos.training")


def _adapt_to_dataset(model: FocoosModel, classes: list[str]) -> tuple[torch.nn.Module, ModelInfo]:
    """A dataset with other classes gets a fresh head; every weight whose shape still fits is kept."""
    if classes == model.classes:
        return model.model, model.model_info
    info = ModelInfo.validated(f"{model.name} on the dataset's classes", **{
        **model.model_info.model_dump(), "classes": classes,
        "config": {**model.config, "num_classes": len(classes)},
    })
    network = build_network(info)
    current, fresh = model.model.state_dict(), network.state_dict()
    fitting = {k: v for k, v in current.items() if k in fresh and v.shape == fresh[k].shape}
    network.load_state_dict(fitting, strict=False)
    logger.info("new head for %d classes; kept %d of %d tensors", len(classes), len(fitting), len(current))
    return network, info


def train(model: FocoosModel, args: TrainerArgs, data_train: Any, data_val: Any = None, hub: Any = None) -> ModelInfo:
    """Train `model` in place on MapDatasets; writes output_dir/run_name and returns the new ModelInfo."""
    from .trainer import FINAL_WEIGHTS, Trainer

    if hub is not None or args.sync_to_hub:
        raise FocoosError("sync_to_hub needs the Focoos hub integration, which this version lacks")
    if data_train.task != model.task:
        raise FocoosError(f"{model.name} does {model.task.value}, the training data is {data_train.task.value}")
    network, info = _adapt_to_dataset(model, list(data_train.classes))
    if args.init_checkpoint:
        load_weights(network, Path(args.init_checkpoint))
    output_dir = Path(args.output_dir) / args.run_name
    output_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(output_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    dataset_name = getattr(data_train, "name", None)
    try:
        if args.num_gpus > 1:
            from .distributed import launch

            launch(network.cpu(), info, args, data_train, data_val, dataset_name)
        else:
            trainer = Trainer(network, info, args, data_train, data_val)
            trainer.write_outputs(trainer.run(), dataset_name)
    finally:
        logger.removeHandler(handler)
        handler.close()
    info = ModelInfo.from_json(output_dir / "model_info.json")
    load_weights(network, output_dir / FINAL_WEIGHTS)
    model.replace_network(network, info)
    return info
