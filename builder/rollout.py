"""Swap the version a server answers with while it serves: roll a new version out, or the last one back.

The server runs in explicit model-control mode. A roll-out adds a version of all four steps with the
builder, then asks the server to load the ensemble: Triton loads the new version of every step that
changed, switches to it and unloads the old one once its calls in flight have finished, so callers see
no failure, only answers that change. A roll-back moves the newest version out of the repository
(configs restored from the version now newest) and loads again. The repository keeps the newest
`keep` versions, so there is always one to roll back to.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.client.control import ModelControl

from .configs import CONFIG_FILE, VERSION_CONFIG_FILE, StepNames, model_versions
from .repository import RepositoryBuilder, RepositoryError, ServedModel

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

DEFAULT_KEEP_VERSIONS = 2


def _restore_configs(root: Path, names: StepNames) -> None:
    """Each step's config.pbtxt becomes the copy kept in its newest version."""
    for step in names.all:
        versions = model_versions(root / step)
        kept = root / step / str(versions[-1]) / VERSION_CONFIG_FILE if versions else None
        if kept is not None and kept.is_file():
            shutil.copy(kept, root / step / CONFIG_FILE)


def roll_out(
    repository: str | Path, model: FocoosModel, control: ModelControl, *, name: str | None = None,
    keep: int = DEFAULT_KEEP_VERSIONS, **build_options: Any,
) -> ServedModel:
    """Add `model` as the newest version of `name` and make the server answer with it; keep `keep` versions."""
    builder = RepositoryBuilder(repository)
    served = builder.add(model, name=name, **build_options)
    control.load(served.name)
    builder.prune(served.name, keep)
    return builder.get(served.name)


def roll_back(repository: str | Path, name: str, control: ModelControl) -> ServedModel:
    """Retire the newest version of `name` and make the server answer with the one before it."""
    builder = RepositoryBuilder(repository)
    versions = builder.get(name).versions
    if len(versions) < 2:
        raise RepositoryError(f"{name} has only version(s) {versions} in {repository}: nothing to roll back to")
    names, newest, root = StepNames(name), str(versions[-1]), Path(repository)
    with tempfile.TemporaryDirectory(prefix=f"focoos-retired-{name}-") as aside:
        moved = []
        for step in names.all:
            if (root / step / newest).is_dir():
                shutil.move(root / step / newest, Path(aside) / step)
                moved.append(step)
        _restore_configs(root, names)
        try:
            control.load(name)
        except BaseException:  # the server still answers with the newest: put it back as it was
            for step in moved:
                shutil.move(Path(aside) / step, root / step / newest)
            _restore_configs(root, names)
            raise
    return builder.get(name)
