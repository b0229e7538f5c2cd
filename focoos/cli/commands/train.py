"""`focoos train`: train a model on a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.datasets import add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model

NAME = "train"
HELP = "train a model on a dataset"
DESCRIPTION = ("Train a model on a dataset's train split, evaluating on its val split, with Focoos' default "
               "augmentations for the task. Every TrainerArgs field is an option (--max-iters, --batch-size, ...); "
               "those not given keep TrainerArgs' defaults. The run is written to output_dir/run_name.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    add_trainer_options(parser)


def run(args: argparse.Namespace) -> int:
    from focoos.ports import DatasetSplitType

    model = load_model(args)
    train_split, val_split = splits(args, model, (DatasetSplitType.TRAIN, DatasetSplitType.VAL))
    arguments = trainer_args(args, args.model)
    info = model.train(arguments, train_split, val_split)
    print(f"trained {info.name}: {info.val_metrics} -> {Path(arguments.output_dir) / arguments.run_name}")
    return 0
