"""Root of the package's error hierarchy; lives here so copied processing code raises the same types."""


class FocoosError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(FocoosError, ValueError):
    """An image or argument passed to inference is missing, corrupt or of an unsupported kind."""
