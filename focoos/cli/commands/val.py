"""`focoos val`: evaluate a model on a dataset split."""

from __future__ import annotations

import argparse

from focoos.cli.datasets import EVAL_FIELDS, add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model
from focoos.ports import DatasetSplitType

NAME = "val"
HELP = "measure how well a model does on a dataset"
DESCRIPTION = ("Run a model on one part of a dataset (the validation pictures by default) and compare what it finds "
               "with the dataset's annotations: COCO average precision for detection and segmentation, IoU for "
               "semantic segmentation, accuracy for classification. Prints one table of the metrics and writes it "
               "to output-dir/<run-name>_eval/metrics.json.")
DEFAULT_SPLIT = DatasetSplitType.VAL  # Focoos' val default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument("--split", default=DEFAULT_SPLIT.value, choices=[split.value for split in DatasetSplitType],
                        help="which part of the dataset")
    add_trainer_options(parser, EVAL_FIELDS)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    model = load_model(args)
    (split,) = splits(args, model, (DatasetSplitType(args.split),))
    arguments = trainer_args(args, args.model)
    model.eval(arguments, split)  # prints the metrics table
    print(f"metrics: {Path(arguments.output_dir) / (arguments.run_name + '_eval') / 'metrics.json'}")
    return 0
