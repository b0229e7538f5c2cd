"""What train and val share: the dataset options, one option per TrainerArgs field, and the splits."""

from __future__ import annotations

import argparse
import json
from enum import Enum
from pathlib import Path
from typing import Any

from focoos.ports import DatasetLayout

from .options import add_model_arguments, deprecated_alias

DEFAULT_LAYOUT = DatasetLayout.ROBOFLOW_COCO  # Focoos' CLI default; AutoDataset itself asks for one
DATASET_HELP = "a dataset name (a folder or .zip in --datasets-dir), or the path of a folder or .zip"


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --dataset and where it is."""
    add_model_arguments(parser)
    parser.add_argument("--dataset", required=True, help=DATASET_HELP)
    add_dataset_location(parser)


def add_dataset_location(parser: argparse.ArgumentParser) -> None:
    """Where a dataset name is looked up and how its files are arranged."""
    parser.add_argument("--datasets-dir", type=Path, default=None,
                        help="where dataset names are looked up (default: FOCOOS_DATASETS_DIR)")
    layout = parser.add_argument("--dataset-layout", dest="dataset_layout", default=DEFAULT_LAYOUT.value,
                                 choices=[layout.value for layout in DatasetLayout],
                                 help="how the dataset's folders and annotations are arranged")
    deprecated_alias(parser, "--layout", layout)


# What each TrainerArgs field means, in the words of its option's help (the model keeps the exact semantics).
FIELD_HELP = {
    "run_name": "name of the run: its folder is output-dir/run-name; a name already taken gets -1, -2, ... "
                "unless --resume (default: the model's name and a random suffix)",
    "output_dir": "where runs are written (default: FOCOOS_MODELS_DIR)",
    "ckpt_dir": "write the checkpoints here (default: the run folder)",
    "init_checkpoint": "a weights file (.pth) loaded before training starts (default: the model's weights)",
    "resume": "continue the run named by --run-name from its last checkpoint instead of starting a new run",
    "num_gpus": "GPUs to train on; more than 1 starts one worker per GPU (default: every GPU visible)",
    "device": "where training runs: cuda (the CPU when there is no GPU), cpu, mps or auto",
    "workers": "processes that load and augment images in the background",
    "amp_enabled": "mixed precision (float16) on a GPU: faster, less memory",
    "ddp_broadcast_buffers": "several GPUs: copy batch-norm statistics from the first GPU at every step",
    "ddp_find_unused": "several GPUs: allow parts of the network that a step does not use",
    "checkpointer_period": "save a checkpoint every this many iterations",
    "checkpointer_max_to_keep": "checkpoints kept; older ones are deleted",
    "eval_period": "evaluate on the validation split every this many iterations",
    "log_period": "record the losses in metrics.json every this many iterations",
    "samples": "validation pictures with predictions drawn, saved at each evaluation",
    "seed": "random seed; negative picks a random one (recorded in the run)",
    "early_stop": "stop when the validation metric has not improved for --patience evaluations",
    "patience": "evaluations without improvement before an early stop",
    "ema_enabled": "keep an exponential moving average of the weights and keep that as the result",
    "ema_decay": "how slowly the average follows the weights (close to 1: slowly)",
    "ema_warmup": "iterations over which the average's decay ramps up",
    "learning_rate": "base learning rate",
    "weight_decay": "weight decay of the layers that are not normalisations or embeddings",
    "max_iters": "training iterations (one batch each)",
    "batch_size": "images per iteration (a split smaller than this still trains: images repeat)",
    "scheduler": "how the learning rate changes over the run",
    "scheduler_extra": "scheduler options as JSON, e.g. '{\"milestones\": [0.8, 0.9], \"gamma\": 0.1}' "
                       "(default: the scheduler's own)",
    "optimizer": "optimisation algorithm",
    "optimizer_extra": "optimizer options as JSON, e.g. '{\"momentum\": 0.9}' (default: the optimizer's own)",
    "weight_decay_norm": "weight decay of normalisation layers",
    "weight_decay_embed": "weight decay of embeddings",
    "backbone_multiplier": "the backbone learns at learning-rate x this (0 freezes it)",
    "decoder_multiplier": "the pixel decoder learns at learning-rate x this",
    "head_multiplier": "the head learns at learning-rate x this",
    "freeze_bn": "batch normalisations keep their statistics and weights",
    "clip_gradients": "largest gradient norm allowed; 0 turns clipping off",
    "size_divisibility": "pad each batch's height and width to a multiple of this (0: no padding)",
    "gather_metric_period": "read the losses (and check they are finite) every this many iterations",
    "zero_grad_before_forward": "clear gradients before the forward pass instead of after it",
    "sync_to_hub": "report the run to the Focoos Hub (needs FOCOOS_API_KEY)",
    "warmup_iters": "raise the learning rate linearly from almost 0 over this many iterations",
}
# TrainerArgs fields evaluation reads (FocoosModel.eval); `val` offers only these (and --device from the model's).
EVAL_FIELDS = ("run_name", "output_dir")


def field_help(name: str, field: Any) -> str:
    """An option's help from its TrainerArgs field: the field's own description, else FIELD_HELP."""
    return field.description or FIELD_HELP.get(name) or name.replace("_", " ")


def _field_default(field: Any) -> Any:
    """A field's default as the user types it; factories (read from the environment) are described in the help."""
    from pydantic_core import PydanticUndefined

    value = field.default
    if value is PydanticUndefined or value is None:
        return None
    return getattr(value, "value", value)


def add_trainer_options(parser: argparse.ArgumentParser, fields: tuple[str, ...] | None = None) -> None:
    """One option per TrainerArgs field (or per field in `fields`): --max-iters, --resume/--no-resume, ...

    Options left out are not passed (None), so TrainerArgs' own defaults apply; help shows them."""
    import types
    import typing

    from focoos.ports import TrainerArgs

    for name, field in TrainerArgs.model_fields.items():
        if fields is not None and name not in fields:
            continue
        kinds = [k for k in typing.get_args(field.annotation) if k is not type(None)] or [field.annotation]
        kind = kinds[0]
        flag = "--" + name.replace("_", "-")
        if flag in parser._option_string_actions:  # e.g. --device, shared with the model's options
            continue
        text, default = field_help(name, field), _field_default(field)
        if default is not None and "default" not in text:
            text = f"{text} (default: {default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind in (int, float, str):
            parser.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), help=text)
        elif isinstance(kind, type) and issubclass(kind, Enum):
            parser.add_argument(flag, choices=[member.value for member in kind], default=None, help=text)
        elif typing.get_origin(kind) in (dict, list) or isinstance(kind, types.GenericAlias):
            parser.add_argument(flag, type=json.loads, default=None, metavar="JSON", help=text)
        else:
            parser.add_argument(flag, default=None, help=text)


def dataset(args: argparse.Namespace, task: Any) -> Any:
    """AutoDataset for --dataset: a name (or .zip) in --datasets-dir, or a path to a folder or zip."""
    from focoos.data import AutoDataset

    source, datasets_dir = Path(args.dataset).expanduser(), args.datasets_dir
    name = args.dataset
    if datasets_dir is None and (source.is_absolute() or len(source.parts) > 1 or source.exists()):
        name, datasets_dir = source.name, source.parent
    kwargs = {"datasets_dir": str(datasets_dir)} if datasets_dir is not None else {}
    return AutoDataset(dataset_name=name, task=task, layout=DatasetLayout(args.dataset_layout), **kwargs)


def trainer_args(args: argparse.Namespace, model_name: str) -> Any:
    """TrainerArgs from the options that were given; the rest keep TrainerArgs' own defaults."""
    import uuid

    from focoos.ports import TrainerArgs

    given = {k: getattr(args, k) for k in TrainerArgs.model_fields if getattr(args, k, None) is not None}
    given.setdefault("run_name", f"{Path(model_name).name}-{uuid.uuid4().hex[:8]}")  # Focoos' default
    return TrainerArgs(**given)


def splits(args: argparse.Namespace, model: Any, wanted: Any) -> list[Any]:
    """The dataset's splits, each with the task's default augmentations (train's or val's)."""
    from focoos.data import get_default_by_task

    resolution = args.im_size or model.model_info.im_size
    train_augs, val_augs = get_default_by_task(model.task, resolution)
    data = dataset(args, model.task)
    return [data.get_split(train_augs if split.value == "train" else val_augs, split=split) for split in wanted]
