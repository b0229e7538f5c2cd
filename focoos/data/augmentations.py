"""Training and evaluation transforms built on torchvision.transforms.v2.

Boxes and masks travel with the image as `tv_tensors.BoundingBoxes` and `tv_tensors.Mask`, so every
geometric step moves them the same way as the pixels (masks are resampled nearest-neighbour). The
last geometric step resizes straight to (resolution, resolution), with no letterbox, because that is
what the inference preprocessing does: training must see the same distortion. Images stay uint8
because the models normalise inside their graph.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# ColorJitter strengths used when color augmentation fires (brightness/contrast/saturation factors
# in [1 - x, 1 + x], hue shift in [-x, x] of a full turn).
COLOR_JITTER = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}


def _image_size(flat_inputs: list[Any]) -> tuple[int, int]:
    """(height, width) of the image in a v2 sample (the first image-like entry)."""
    for item in flat_inputs:
        if isinstance(item, tv_tensors.Image | tv_tensors.BoundingBoxes | tv_tensors.Mask):
            height, width = F.get_size(item)
            return int(height), int(width)
    for item in flat_inputs:
        if isinstance(item, torch.Tensor) and item.ndim >= 2:
            return int(item.shape[-2]), int(item.shape[-1])
    raise TypeError("no image found in the sample")


def _fill_for(fill: int | dict[Any, int], inpt: Any) -> int:
    """The fill value of this input's type, from a v2-style fill dict ({type: value, "others": value})."""
    if isinstance(fill, dict):
        return fill.get(type(inpt), fill.get("others", 0))
    return fill


def _randint(low: int, high: int) -> int:
    """Uniform integer in [low, high] from torch's RNG (seeded per DataLoader worker)."""
    return int(torch.randint(low, high + 1, (1,)).item())


class RandomRescale(v2.Transform):
    """Scale the content by 2**U(-scale_ratio, scale_ratio), stretch x/y by 2**U(-aspect_ratio, aspect_ratio).

    The canvas keeps its size: a larger content is cropped at a random position, a smaller one is
    placed at a random position on black (or `fill`, by type). Rescaling the whole canvas would be
    undone by the final straight resize, so the jitter has to happen inside the canvas.
    """

    def __init__(self, scale_ratio: float = 0.0, aspect_ratio: float = 0.0, fill: int | dict[Any, int] = 0) -> None:
        super().__init__()
        self.scale_ratio = float(scale_ratio)
        self.aspect_ratio = float(aspect_ratio)
        self.fill = fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = _image_size(flat_inputs)
        log_scale = (torch.rand(1).item() * 2 - 1) * self.scale_ratio
        log_aspect = (torch.rand(1).item() * 2 - 1) * self.aspect_ratio
        sx = 2.0 ** (log_scale + log_aspect / 2)
        sy = 2.0 ** (log_scale - log_aspect / 2)
        new_h, new_w = max(1, round(height * sy)), max(1, round(width * sx))
        top = _randint(min(0, new_h - height), max(0, new_h - height))
        left = _randint(min(0, new_w - width), max(0, new_w - width))
        return {"size": [new_h, new_w], "top": top, "left": left, "height": height, "width": width}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = F.resize(inpt, params["size"], antialias=True)
        top, left, height, width = params["top"], params["left"], params["height"], params["width"]
        new_h, new_w = params["size"]
        # Pad explicitly where the content is smaller: crop would pad every type with 0, and a
        # semantic mask needs its ignore value there.
        pad = [max(0, -left), max(0, -top), max(0, left + width - new_w), max(0, top + height - new_h)]
        if any(pad):
            out = F.pad(out, pad, fill=_fill_for(self.fill, inpt))
            top, left = top + pad[1], left + pad[0]
        return F.crop(out, top, left, height, width)


class RandomSquareCrop(v2.Transform):
    """Crop a square of `crop_size` pixels (default and cap: the shorter side) at a random position."""

    def __init__(self, crop_size: int | None = None) -> None:
        super().__init__()
        self.crop_size = crop_size

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = _image_size(flat_inputs)
        side = min(self.crop_size or min(height, width), height, width)
        return {"top": _randint(0, height - side), "left": _randint(0, width - side), "side": side}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.crop(inpt, params["top"], params["left"], params["side"], params["side"])


class DatasetAugmentations(BaseModel):
    """What to randomise during training; `build` turns it into a transforms.v2 pipeline.

    Field names follow the Focoos library. Meanings here:
    - `color_augmentation`: probability of a ColorJitter (strengths in COLOR_JITTER).
    - `horizontal_flip`, `vertical_flip`, `zoom_out`: probabilities. Zoom-out places the image on a
      black canvas up to `zoom_out_side` times larger (objects get smaller).
    - `rotation`: maximum angle in degrees (uniform in [-rotation, rotation]); boxes become the
      enclosing box of the rotated box, clipped to the image.
    - `scale_ratio`, `aspect_ratio`: log2 ranges of the content scale and x/y stretch (0.5 means
      0.71x-1.41x); see RandomRescale.
    - `crop`, `crop_size`: random square crop (default side: the image's shorter side).
    - `square`: kept for Focoos configs; every output is resized straight to a square, so it is
      always in effect and its value changes nothing.
    """

    model_config = ConfigDict(extra="forbid")

    resolution: int = Field(640, ge=32, le=4096)
    color_augmentation: float = Field(0.0, ge=0.0, le=1.0)
    horizontal_flip: float = Field(0.0, ge=0.0, le=1.0)
    vertical_flip: float = Field(0.0, ge=0.0, le=1.0)
    zoom_out: float = Field(0.0, ge=0.0, le=1.0)
    zoom_out_side: float = Field(2.0, ge=1.0, le=8.0)
    rotation: float = Field(0.0, ge=0.0, le=180.0)
    aspect_ratio: float = Field(0.0, ge=0.0, le=2.0)
    square: float = Field(0.0, ge=0.0, le=1.0)
    scale_ratio: float = Field(0.0, ge=0.0, le=2.0)
    crop: bool = False
    crop_size: int | None = Field(None, ge=1)

    def build(self, train: bool, with_boxes: bool = True, mask_fill: int = 0) -> v2.Compose:
        """The pipeline for one sample dict {"image": Image, "boxes": BoundingBoxes, "labels": Tensor}.

        Samples may also hold a `tv_tensors.Mask`: per-instance masks [N,H,W], which the sanitising
        step drops together with their boxes, or a semantic class map [H,W]. `train=False` gives the
        evaluation pipeline: only the resize. `with_boxes=False` (classification and semantic samples,
        which hold no boxes) leaves out the box sanitising step, which needs boxes. `mask_fill` is the
        mask value of areas that zoom-out, rescale and rotation uncover (255 = ignore for semantic maps).
        """

        def fill() -> dict[Any, int]:  # a fresh dict per transform: torchvision converts it in place
            return {tv_tensors.Image: 0, tv_tensors.Mask: mask_fill, "others": 0}

        steps: list[v2.Transform] = []
        if train:
            if self.horizontal_flip > 0:
                steps.append(v2.RandomHorizontalFlip(p=self.horizontal_flip))
            if self.vertical_flip > 0:
                steps.append(v2.RandomVerticalFlip(p=self.vertical_flip))
            if self.zoom_out > 0 and self.zoom_out_side > 1.0:
                steps.append(v2.RandomZoomOut(fill=fill(), side_range=(1.0, self.zoom_out_side), p=self.zoom_out))
            if self.scale_ratio > 0 or self.aspect_ratio > 0:
                steps.append(RandomRescale(scale_ratio=self.scale_ratio, aspect_ratio=self.aspect_ratio, fill=fill()))
            if self.rotation > 0:
                steps.append(v2.RandomRotation(degrees=self.rotation, fill=fill()))
            if self.crop:
                steps.append(RandomSquareCrop(self.crop_size))
        steps.append(v2.Resize((self.resolution, self.resolution), antialias=True))
        # Colour after the resize: same result, fewer pixels to process.
        if train and self.color_augmentation > 0:
            steps.append(v2.RandomApply([v2.ColorJitter(**COLOR_JITTER)], p=self.color_augmentation))
        if with_boxes:
            steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0)]
        return v2.Compose(steps)


__all__ = ["COLOR_JITTER", "DatasetAugmentations", "RandomRescale", "RandomSquareCrop"]
