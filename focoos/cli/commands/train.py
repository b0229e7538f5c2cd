"""`focoos train`: train a model on a dataset."""

from __future__ import annotations

import argparse

from focoos.cli.datasets import add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model
from focoos.errors import FocoosError

NAME = "train"
HELP = "train a model on your dataset"
DESCRIPTION = ("Train a model on the training pictures of a dataset, checking it on the validation pictures as it "
               "goes, with Focoos' usual image changes (flips, crops, colours) for the task. The run is written to "
               "output-dir/run-name: the trained weights, model_info.json, metrics and a log. A run name already "
               "taken gets -1, -2, ... so no run is overwritten; --resume continues a stopped run instead.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    add_trainer_options(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focoos.ports import DatasetSplitType

    if args.resume and not args.run_name:
        raise FocoosError("--resume continues an existing run: name it with --run-name")
    model = load_model(args)
    train_split, val_split = splits(args, model, (DatasetSplitType.TRAIN, DatasetSplitType.VAL))
    arguments = trainer_args(args, args.model)
    info = model.train(arguments, train_split, val_split)
    print(f"trained {info.name}: {info.val_metrics}\nrun folder: {Path(arguments.output_dir) / arguments.run_name} "
          f"(load it with ModelManager.get({info.name!r}) or --model {info.name})")
    return 0
