"""focoos.training: trainer, losses, evaluation and distributed workers that produce model weights.

Entry points: `FocoosModel.train(args, data_train, data_val)` calls `train` below, and
`FocoosModel.eval(args, data_test)` calls `evaluate_model`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from focoos.errors import FocoosError
from focoos.models import build_network
from focoos.ports import ArtifactName, ModelInfo, Task, TrainerArgs
from focoos.weights import load_weights

from .evaluation import evaluate_model

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

logger = logging.getLogger("focoos.training")


def _adapt_to_dataset(model: FocoosModel, data: Any) -> tuple[torch.nn.Module, ModelInfo]:
    """A dataset with other classes (or keypoints) gets a fresh head; every weight whose shape still fits is kept."""
    classes = list(data.classes)
    overrides = {"num_classes": len(classes)} if classes != model.classes else {}
    names = list(getattr(data, "keypoint_names", []))
    if model.task == Task.KEYPOINT and names != list(model.config.get("keypoints") or []):
        overrides.update(num_keypoints=len(names), keypoints=names, skeleton=data.skeleton)
    if not overrides:
        return model.model, model.model_info
    info = ModelInfo.validated(f"{model.name} on the dataset's classes", **{
        **model.model_info.model_dump(), "classes": classes, "config": {**model.config, **overrides},
    })
    network = build_network(info)
    current, fresh = model.model.state_dict(), network.state_dict()
    fitting = {k: v for k, v in current.items() if k in fresh and v.shape == fresh[k].shape}
    network.load_state_dict(fitting, strict=False)
    logger.info("new head for %d classes; kept %d of %d tensors", len(classes), len(fitting), len(current))
    return network, info


def _hub_sync(model: FocoosModel, info: ModelInfo, args: TrainerArgs, hub: Any) -> Any:
    """sync_to_hub: create the run's hub model (named after the run, as Focoos does) and the hook reporting to it."""
    from focoos.hub.sync import SyncToHub

    run_info = info.model_copy(update={"name": args.run_name, "focoos_model": info.focoos_model or model.name,
                                       "train_args": args.model_dump(mode="json")})
    return SyncToHub.for_new_model(hub, run_info, Path(args.output_dir) / args.run_name)


def free_run_name(output_dir: Path, run_name: str) -> str:
    """Focoos' rule for a run name already taken in output_dir: the first free of name-1, name-2, ..."""
    name, revision = run_name, 1
    while (output_dir / name).exists():
        name, revision = f"{run_name}-{revision}", revision + 1
    return name


def run_folder(args: TrainerArgs) -> str:
    """The run name this training writes under: an existing run is never overwritten.

    resume=True continues output_dir/run_name (from its last checkpoint, or from iteration 0 when it has none);
    otherwise a name already taken gets Focoos' -1, -2, ... suffix.
    """
    output_dir, run_name = Path(args.output_dir), args.run_name.strip()
    if args.resume:
        checkpoints = Path(args.ckpt_dir) if args.ckpt_dir else output_dir / run_name
        if not (checkpoints / "last_checkpoint").is_file():
            logger.warning("resume=True but %s holds no checkpoint: training %s from iteration 0", checkpoints,
                           run_name)
        return run_name
    free = free_run_name(output_dir, run_name)
    if free != run_name:
        logger.warning("%s already exists: this run is %s (resume=True continues the existing one)",
                       output_dir / run_name, free)
    return free


def train(model: FocoosModel, args: TrainerArgs, data_train: Any, data_val: Any = None, hub: Any = None) -> ModelInfo:
    """Train `model` in place on MapDatasets; writes output_dir/run_name and returns the new ModelInfo.

    As in Focoos, `args.run_name` is updated to the run's actual name when the one given was taken."""
    from .trainer import FINAL_WEIGHTS, Trainer

    if data_train.task != model.task:
        raise FocoosError(f"{model.name} does {model.task.value}, the training data is {data_train.task.value}")
    args.run_name = run_folder(args)
    if args.seed < 0:  # Focoos: a negative seed means a random one; record it so the run can be repeated
        args = args.model_copy(update={"seed": random.SystemRandom().randrange(2**31)})
        logger.info("seed < 0: this run uses seed %d", args.seed)
    network, info = _adapt_to_dataset(model, data_train)
    info = info.model_copy(update={"focoos_model": model.model_info.focoos_model or model.name})
    if args.init_checkpoint:
        load_weights(network, Path(args.init_checkpoint))
    if hub is not None and not args.sync_to_hub:
        logger.info("a hub was given but args.sync_to_hub is False: the run is not synced")
    sync = _hub_sync(model, info, args, hub) if args.sync_to_hub else None
    hooks = (sync,) if sync else ()
    output_dir = Path(args.output_dir) / args.run_name
    output_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(output_dir / ArtifactName.LOGS.value)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    dataset_name = getattr(data_train, "name", None)
    try:
        if args.num_gpus > 1:
            from .distributed import launch

            launch(network.cpu(), info, args, data_train, data_val, dataset_name, hooks=hooks)
        else:
            trainer = Trainer(network, info, args, data_train, data_val, hooks=hooks)
            trainer.write_outputs(trainer.run(), dataset_name)
    except BaseException as exc:
        if sync:
            sync.report_failure(exc)  # once: a failure inside the loop was reported by the hook already
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
    if sync:
        sync.report_completed()
    info = ModelInfo.from_json(output_dir / ArtifactName.INFO.value)
    load_weights(network, output_dir / FINAL_WEIGHTS)
    model.replace_network(network, info)
    return info


__all__ = ["evaluate_model", "train"]
