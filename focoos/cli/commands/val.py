"""`focoos val`: evaluate a model on a dataset split."""

from __future__ import annotations

import argparse
import json

from focoos.cli.datasets import add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model
from focoos.ports import DatasetSplitType

NAME = "val"
HELP = "evaluate a model on a dataset split"
DESCRIPTION = ("Evaluate a model on one split of a dataset with the training evaluator (COCO metrics for detection "
               "and segmentation, accuracy for classification) and print the metrics as JSON.")
DEFAULT_SPLIT = DatasetSplitType.VAL  # Focoos' val default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument("--split", default=DEFAULT_SPLIT.value, choices=[split.value for split in DatasetSplitType],
                        help="default: %(default)s")
    add_trainer_options(parser)


def run(args: argparse.Namespace) -> int:
    model = load_model(args)
    (split,) = splits(args, model, (DatasetSplitType(args.split),))
    print(json.dumps(model.eval(trainer_args(args, args.model), split), indent=2))
    return 0
