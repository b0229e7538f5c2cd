"""One flat exception hierarchy: every failure a user can cause raises a FocoosError subclass."""

from focoos.processing.errors import FocoosError, InvalidInputError

__all__ = [
    "ExportError",
    "FocoosError",
    "HubAuthError",
    "HubError",
    "HubNotFoundError",
    "HubUnreachableError",
    "InvalidInputError",
    "ModelConfigError",
    "ModelInfoError",
    "ModelNotFoundError",
    "RandomWeightsError",
    "RuntimeUnavailableError",
    "UnsupportedFamilyError",
    "WeightsError",
]


class ModelInfoError(FocoosError, ValueError):
    """A model_info.json or ModelInfo is missing, unreadable or inconsistent."""


class ModelConfigError(ModelInfoError):
    """A model config does not fit its family's typed config: an unknown key, a missing field, a wrong type.

    `field` names the offending field (dotted for nested configs, e.g. `backbone_config.size`).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ModelNotFoundError(FocoosError, LookupError):
    """No registry entry, local folder or hub reference matches the name."""


class UnsupportedFamilyError(FocoosError, ValueError):
    """The model family has no implementation in this package yet."""


class WeightsError(FocoosError, ValueError):
    """Weights cannot be fetched, fail their checksum, or do not fit the architecture."""


class RandomWeightsError(WeightsError):
    """A model holding random weights was to be built into a repository or exported without the opt-in."""


class RuntimeUnavailableError(FocoosError, RuntimeError):
    """The requested runtime (ONNX provider, TorchScript, CUDA) is not available on this machine."""


class ExportError(FocoosError, RuntimeError):
    """Exporting a model failed; nothing is left in the output folder."""


class HubError(FocoosError, RuntimeError, ValueError):
    """A Focoos hub request failed; the message names the URL or reference and the HTTP status.

    Also a ValueError: Focoos raises ValueError for every failed hub call, and its docs catch that."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HubAuthError(HubError, PermissionError):
    """No API key, a wrong key (401), or a resource of another user (403)."""


class HubNotFoundError(HubError, ModelNotFoundError):
    """The hub has no model or dataset with that reference (404)."""


class HubUnreachableError(HubError, ConnectionError):
    """The hub did not answer: refused, timed out, dropped mid-transfer, or FOCOOS_OFFLINE is set."""
