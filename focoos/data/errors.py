"""The one error type of the data package, so callers can tell bad data from bad code."""

from focoos.errors import FocoosError


class DatasetError(FocoosError, ValueError):
    """A dataset folder, annotation file or image is missing, malformed or inconsistent."""


__all__ = ["DatasetError"]
