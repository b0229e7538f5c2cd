"""Ship a trained model with the package: half-precision weights plus a registry JSON that points at them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from focoos.model_registry import REGISTRY_DIR
from focoos.ports import ModelInfo, TrainerArgs
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
