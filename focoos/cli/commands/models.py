"""`focoos models`: the models this installation knows by name."""

from __future__ import annotations

import argparse
import json

NAME = "models"
HELP = "list the registry"
DESCRIPTION = ("List every model in the registry by name, with its task, family, input size, number of classes "
               "and whether pretrained weights come with it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from focoos.model_registry import ModelRegistry

    rows = []
    for name in ModelRegistry.list_models():
        info = ModelRegistry.get_model_info(name)
        rows.append((name, info.task.value, info.model_family.value, str(info.im_size), str(info.num_classes),
                     "yes" if info.weights_uri else "no"))
    if args.json:
        keys = ("name", "task", "family", "im_size", "classes", "weights")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    header = ("NAME", "TASK", "FAMILY", "IM_SIZE", "CLASSES", "WEIGHTS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0
