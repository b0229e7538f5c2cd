"""One flat exception hierarchy: every failure a user can cause raises a FocoosError subclass."""

from focoos.processing.errors import FocoosError, InvalidInputError

__all__ = [
    "ExportError",
    "FocoosError",
    "InvalidInputError",
    "ModelInfoError",
    "ModelNotFoundError",
    "RuntimeUnavailableError",
    "UnsupportedFamilyError",
    "WeightsError",
]


class ModelInfoError(FocoosError, ValueError):
    """A model_info.json or ModelInfo is missing, unreadable or inconsistent."""


class ModelNotFoundError(FocoosError, LookupError):
    """No registry entry, local folder or hub reference matches the name."""


class UnsupportedFamilyError(FocoosError, ValueError):
    """The model family has no implementation in this package yet."""


class WeightsError(FocoosError, ValueError):
    """Weights cannot be fetched, fail their checksum, or do not fit the architecture."""


class RuntimeUnavailableError(FocoosError, RuntimeError):
    """The requested runtime (ONNX provider, TorchScript, CUDA) is not available on this machine."""


class ExportError(FocoosError, RuntimeError):
    """Exporting a model failed; nothing is left in the output folder."""
