"""`focoos val`: evaluate a model on a dataset split."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from focoos.cli.datasets import EVAL_FIELDS, add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model
from focoos.ports import DatasetSplitType

if TYPE_CHECKING:
    from focoos.ports import DatasetLayout, OptimizerName, Scheduler

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


def val_command(
    model_name: str,
    dataset_name: str,
    dataset_layout: DatasetLayout | str,
    im_size: int | tuple[int, int],
    run_name: str,
    output_dir: str | None = None,
    ckpt_dir: str | None = None,
    init_checkpoint: str | None = None,
    resume: bool | None = None,
    num_gpus: int | None = None,
    device: str | None = None,
    workers: int | None = None,
    amp_enabled: bool | None = None,
    ddp_broadcast_buffers: bool | None = None,
    ddp_find_unused: bool | None = None,
    checkpointer_period: int | None = None,
    checkpointer_max_to_keep: int | None = None,
    eval_period: int | None = None,
    log_period: int | None = None,
    samples: int | None = None,
    seed: int | None = None,
    early_stop: bool | None = None,
    patience: int | None = None,
    ema_enabled: bool | None = None,
    ema_decay: float | None = None,
    ema_warmup: int | None = None,
    learning_rate: float | None = None,
    weight_decay: float | None = None,
    max_iters: int | None = None,
    batch_size: int | None = None,
    scheduler: Scheduler | str | None = None,
    optimizer: OptimizerName | str | None = None,
    weight_decay_norm: float | None = None,
    weight_decay_embed: float | None = None,
    backbone_multiplier: float | None = None,
    decoder_multiplier: float | None = None,
    head_multiplier: float | None = None,
    freeze_bn: bool | None = None,
    clip_gradients: float | None = None,
    size_divisibility: int | None = None,
    gather_metric_period: int | None = None,
    zero_grad_before_forward: bool | None = None,
    datasets_dir: str | None = None,
) -> None:
    """`focoos val` from Python, with Focoos' `val_command` parameters: evaluates on the validation split. A parameter
    left None is not passed, so TrainerArgs' own default applies; evaluation reads run_name and output_dir."""
    values = dict(locals())  # Focoos' parameters, before anything else is bound here
    from ._call import run_dataset_command

    run_dataset_command(NAME, run, values)
