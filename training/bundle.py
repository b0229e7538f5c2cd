"""Ship a trained model with the package: half-precision weights plus a registry JSON that points at them.

Also what the scripts that train the bundled models share: their options, splits, training recipe and install.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from focoos.model_registry import REGISTRY_DIR
from focoos.ports import DatasetLayout, DatasetSplitType, ModelFamily, ModelInfo, Task, TrainerArgs
from focoos.weights import sha256_of

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel


def untrained_model(info: ModelInfo, seed: int = 0) -> FocoosModel:
    """The network of `info` with seeded random weights, built on purpose (so without NoWeightsWarning)."""
    import warnings

    from focoos.model_manager import ModelManager, NoWeightsWarning

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWeightsWarning)
        return ModelManager.get(info.name, model_info=info, device="cpu")


def install_in_registry(
    model: FocoosModel, val_dataset: str, train_args: TrainerArgs, registry_dir: Path = REGISTRY_DIR
) -> Path:
    """Write registry_dir/weights/<name>.pth (fp16; loading casts back) and registry_dir/<name>.json with its sha256."""
    weights = registry_dir / "weights" / f"{model.name}.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.model.state_dict().items()}
    torch.save({"model": state}, weights)
    info = model.model_info.model_copy(
        update={
            "weights_uri": f"weights/{weights.name}",
            "weights_sha256": sha256_of(weights),
            "ref": model.name,
            "val_dataset": val_dataset,
            "train_args": train_args.model_dump(mode="json", exclude={"output_dir"}),
        }
    )
    info.dump_json(registry_dir / f"{model.name}.json")
    print(f"installed {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {registry_dir / (model.name + '.json')}")
    return weights


def bundle_parser(doc: str, *, name: str, data: Path, max_iters: int | None, batch_size: int,
                  output_dir: Path) -> argparse.ArgumentParser:
    """The options of every script that trains a bundled model (each adds its own)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--max-iters", type=int, default=max_iters)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--output-dir", type=Path, default=output_dir)
    parser.add_argument("--run-name", default=name)
    parser.add_argument("--no-install", action="store_true", help="do not write into focoos/registry")
    return parser


def bundle_splits(folder: Path, task: Task, layout: DatasetLayout, resolution: int, **augmentations: Any) -> tuple:
    """(train, val) of the dataset at `folder`: training with `augmentations`, validation resized only."""
    from focoos.data import AutoDataset, DatasetAugmentations

    dataset = AutoDataset(dataset_name=folder.name, task=task, layout=layout, datasets_dir=folder.parent)
    train = dataset.get_split(DatasetAugmentations(resolution=resolution, **augmentations), DatasetSplitType.TRAIN)
    return train, dataset.get_split(DatasetAugmentations(resolution=resolution), DatasetSplitType.VAL)


def bundle_trainer_args(options: argparse.Namespace, *, warmup: int, evaluations: int, **recipe: Any) -> TrainerArgs:
    """How every bundled model trains: cosine lr after a linear warmup of at most `warmup` steps (a tenth of the
    run at most), `evaluations` evaluations and checkpoints, weight decay 1e-4, seed 0, no early stop; `recipe`
    holds the model's own fields (learning rate, multipliers, EMA, clipping)."""
    max_iters = options.max_iters
    return TrainerArgs(
        run_name=options.run_name, output_dir=str(options.output_dir), max_iters=max_iters,
        batch_size=options.batch_size, weight_decay=1e-4, scheduler="COSINE", warmup_iters=min(warmup, max_iters // 10),
        eval_period=max(1, max_iters // evaluations), checkpointer_period=max(1, max_iters // evaluations),
        log_period=10, seed=0, workers=1, early_stop=False, **recipe,
    )  # fmt: skip


def train_bundled(
    splits: tuple,
    trainer_args: TrainerArgs,
    *,
    name: str,
    family: ModelFamily,
    task: Task,
    config: dict[str, Any],
    resolution: int,
    description: str,
    val_dataset: str,
    install: bool,
    prepare: Callable[[FocoosModel], None] | None = None,
) -> FocoosModel:
    """Build `name` untrained for the training split's classes, `prepare` it (initial weights), train it, print
    its validation metrics and, with `install`, ship it in the registry as measured on `val_dataset`."""
    train, val = splits
    info = ModelInfo(
        name=name, model_family=family, task=task, classes=train.classes, im_size=resolution,
        config={**config, "num_classes": len(train.classes)}, description=description,
    )  # fmt: skip
    model = untrained_model(info)
    if prepare:
        prepare(model)
    trained = model.train(trainer_args, train, val)
    print(f"{name}: {trained.val_metrics}")
    if install:  # shipped under its own name, not the run's
        model.replace_network(model.model, model.model_info.model_copy(update={"name": name, "focoos_model": None}))
        install_in_registry(model, val_dataset, trainer_args)
    return model
