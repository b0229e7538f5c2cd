"""The models that ship with the package: one JSON file per model in focoos/registry/."""

from __future__ import annotations

from pathlib import Path

from focoos.errors import ModelNotFoundError
from focoos.ports import ModelInfo

REGISTRY_DIR = Path(__file__).parent / "registry"


class ModelRegistry:
    """Read-only view of the bundled registry (names, ModelInfo, bundled weights)."""

    registry_dir: Path = REGISTRY_DIR

    @classmethod
    def list_models(cls) -> list[str]:
        return sorted(p.stem for p in cls.registry_dir.glob("*.json"))

    @classmethod
    def exists(cls, name: str) -> bool:
        return (cls.registry_dir / f"{name}.json").is_file()

    @classmethod
    def get_model_info(cls, name: str | Path) -> ModelInfo:
        """The ModelInfo of a registry name, or of a model_info JSON file given by its path."""
        if cls.exists(str(name)):
            return ModelInfo.from_json(cls.registry_dir / f"{name}.json")
        if Path(name).expanduser().is_file():
            return ModelInfo.from_json(Path(name).expanduser())
        raise ModelNotFoundError(
            f"'{name}' is neither in the model registry nor a JSON file; available: {', '.join(cls.list_models())}"
        )
