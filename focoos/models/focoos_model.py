"""Focoos' module path of `FocoosModel` (`from focoos.models.focoos_model import FocoosModel`)."""

from focoos.focoos_model import FocoosModel

__all__ = ["FocoosModel"]
