"""`focoos train`: train a model on a dataset."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from focoos.cli.datasets import add_dataset_arguments, add_trainer_options, splits, trainer_args
from focoos.cli.options import load_model
from focoos.errors import FocoosError

if TYPE_CHECKING:
    from focoos.ports import DatasetLayout, OptimizerName, Scheduler

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


def train_command(
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
    sync_to_hub: bool | None = None,
    datasets_dir: str | None = None,
) -> None:
    """`focoos train` from Python, with Focoos' `train_command` parameters. A parameter left None is not passed,
    so TrainerArgs' own default applies (as when `focoos train` is not given that option)."""
    values = dict(locals())  # Focoos' parameters, before anything else is bound here
    from ._call import run_dataset_command

    run_dataset_command(NAME, run, values)
