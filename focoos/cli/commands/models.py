"""`focoos models`: the models this installation knows by name."""

from __future__ import annotations

import argparse
import json

NAME = "models"
HELP = "list the models you can use by name"
DESCRIPTION = ("List every model known by name, with its task, family, picture size, number of classes and where "
               "its trained weights are: bundled (installed with focoos), cached (downloaded before), download "
               "(fetched on first use, needs the internet) or none (random weights until you train it).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def weights_status(info: object, registry_dir: object) -> str:
    """bundled, cached, download or none: what ModelManager.get would load for this registry entry."""
    from pathlib import Path

    from focoos.weights import cached_weights_path

    uri = getattr(info, "weights_uri", None)
    if not uri:
        return "none"
    if uri.startswith(("http://", "https://")):
        return "cached" if cached_weights_path(uri).is_file() else "download"
    path = Path(uri).expanduser()
    path = path if path.is_absolute() else Path(str(registry_dir)) / path
    return "bundled" if path.is_file() else "none"


def run(args: argparse.Namespace) -> int:
    from focoos.model_registry import ModelRegistry

    rows = []
    for name in ModelRegistry.list_models():
        info = ModelRegistry.get_model_info(name)
        rows.append((name, info.task.value, info.model_family.value, str(info.im_size), str(info.num_classes),
                     weights_status(info, ModelRegistry.registry_dir)))
    if args.json:
        keys = ("name", "task", "family", "im_size", "classes", "weights")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    header = ("NAME", "TASK", "FAMILY", "IM_SIZE", "CLASSES", "WEIGHTS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
