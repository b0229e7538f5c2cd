"""What train and val share: the dataset options, one option per TrainerArgs field, and the splits."""

from __future__ import annotations

import argparse
import json
from enum import Enum
from pathlib import Path
from typing import Any

from focoos.ports import DatasetLayout

from .options import add_model_arguments

DEFAULT_LAYOUT = DatasetLayout.ROBOFLOW_COCO  # Focoos' CLI default; AutoDataset itself asks for one


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --dataset and where it is, then one option per TrainerArgs field."""
    add_model_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset name or .zip in --datasets-dir, or a folder/zip path")
    parser.add_argument("--datasets-dir", type=Path, default=None, help="default: FOCOOS_DATASETS_DIR")
    parser.add_argument("--dataset-layout", "--layout", dest="dataset_layout", default=DEFAULT_LAYOUT.value,
                        choices=[layout.value for layout in DatasetLayout], help="default: %(default)s")


def add_trainer_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainerArgs field (--max-iters, --resume/--no-resume, ...), defaults left to TrainerArgs."""
    import types
    import typing

    from focoos.ports import TrainerArgs

    for name, field in TrainerArgs.model_fields.items():
        kinds = [k for k in typing.get_args(field.annotation) if k is not type(None)] or [field.annotation]
        kind = kinds[0]
        flag = "--" + name.replace("_", "-")
        if flag in parser._option_string_actions:  # e.g. --device, shared with the model's options
            continue
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif kind in (int, float, str):
            parser.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper())
        elif isinstance(kind, type) and issubclass(kind, Enum):
            parser.add_argument(flag, choices=[member.value for member in kind], default=None)
        elif typing.get_origin(kind) in (dict, list) or isinstance(kind, types.GenericAlias):
            parser.add_argument(flag, type=json.loads, default=None, metavar="JSON")
        else:
            parser.add_argument(flag, default=None)


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
