"""BiSeNetFormer's numpy postprocessing (a MaskFormer head: the shared mask routine)."""

from focoos.processing.postprocess import mask_options as postprocess_options
from focoos.processing.postprocess import postprocess_masks as postprocess

__all__ = ["postprocess", "postprocess_options"]
