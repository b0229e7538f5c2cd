"""FAI-MF's numpy postprocessing: the same code runs locally and in the Triton postprocess step."""

from focoos.processing.postprocess import mask_options as postprocess_options
from focoos.processing.postprocess import postprocess_masks as postprocess

__all__ = ["postprocess", "postprocess_options"]
