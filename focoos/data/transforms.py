"""The transforms.v2 steps DatasetAugmentations needs that torchvision does not ship.

Each follows the Focoos augmentation of the same purpose (resize by the shorter side with a cap on
the longer one, random aspect-ratio change, random crop, SSD-style colour jitter), written as a v2
transform so boxes and masks move with the pixels. `FitToCanvas` is the last geometric step: the
trainer stacks a batch, so every sample must end at one size; Focoos pads each batch at its
bottom-right, and this pads every sample the same way (shrinking first the rare one too large).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


def image_size(flat_inputs: list[Any]) -> tuple[int, int]:
    """(height, width) of the image in a v2 sample (the first image-like entry)."""
    for item in flat_inputs:
        if isinstance(item, tv_tensors.Image | tv_tensors.BoundingBoxes | tv_tensors.Mask):
            height, width = F.get_size(item)
            return int(height), int(width)
    for item in flat_inputs:
        if isinstance(item, torch.Tensor) and item.ndim >= 2:
            return int(item.shape[-2]), int(item.shape[-1])
    raise TypeError("no image found in the sample")


def fill_for(fill: int | dict[Any, int], inpt: Any) -> int:
    """The fill value of this input's type, from a v2-style fill dict ({type: value, "others": value})."""
    if isinstance(fill, dict):
        return fill.get(type(inpt), fill.get("others", 0))
    return fill


def _uniform(low: float, high: float) -> float:
    """Uniform float in [low, high] from torch's RNG (seeded per DataLoader worker)."""
    return low + (high - low) * float(torch.rand(1).item())


def _randint(low: int, high: int) -> int:
    """Uniform integer in [low, high] from torch's RNG."""
    return int(torch.randint(low, high + 1, (1,)).item())


def _coin() -> bool:
    return bool(torch.rand(1).item() < 0.5)


def shortest_edge_shape(height: int, width: int, short_edge: int, max_size: int | None) -> tuple[int, int]:
    """Output (h, w) with the shorter side at `short_edge`, scaled down further if the longer passes max_size."""
    scale = short_edge / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max_size is not None and max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return max(1, int(new_h + 0.5)), max(1, int(new_w + 0.5))


class ResizeShortestEdge(v2.Transform):
    """Resize keeping the aspect ratio: shorter side uniform in [low, high] pixels, longer side at most max_size."""

    def __init__(self, short_edge: tuple[int, int], max_size: int | None = None) -> None:
        super().__init__()
        self.short_edge = (int(short_edge[0]), int(short_edge[1]))
        self.max_size = max_size

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = image_size(flat_inputs)
        short_edge = _randint(*self.short_edge)
        return {"size": list(shortest_edge_shape(height, width, short_edge, self.max_size))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.resize(inpt, params["size"], antialias=True)


class RandomAspectRatio(v2.Transform):
    """Stretch one side by r = 2**U(-aspect_ratio, aspect_ratio): r > 1 widens or flattens, r < 1 the reverse."""

    def __init__(self, aspect_ratio: float) -> None:
        super().__init__()
        self.aspect_ratio = float(aspect_ratio)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = image_size(flat_inputs)
        ratio = 2.0 ** _uniform(-self.aspect_ratio, self.aspect_ratio)
        if ratio > 1.0:
            size = (height, width * ratio) if _coin() else (height / ratio, width)
        else:
            size = (height / ratio, width) if _coin() else (height, width * ratio)
        return {"size": [max(1, int(size[0])), max(1, int(size[1]))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.resize(inpt, params["size"], antialias=True)


class RandomCrop(v2.Transform):
    """Crop (height, width) pixels at a random position; a side shorter than the crop is kept whole."""

    def __init__(self, size_hw: tuple[int, int]) -> None:
        super().__init__()
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = image_size(flat_inputs)
        crop_h, crop_w = min(self.size_hw[0], height), min(self.size_hw[1], width)
        return {"top": _randint(0, height - crop_h), "left": _randint(0, width - crop_w), "h": crop_h, "w": crop_w}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.crop(inpt, params["top"], params["left"], params["h"], params["w"])


class FitToCanvas(v2.Transform):
    """End at exactly (height, width): shrink (aspect kept) only if larger, then pad bottom and right with `fill`."""

    def __init__(self, size_hw: tuple[int, int], fill: int | dict[Any, int] = 0) -> None:
        super().__init__()
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.fill = fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = image_size(flat_inputs)
        canvas_h, canvas_w = self.size_hw
        scale = min(1.0, canvas_h / height, canvas_w / width)
        new_h = min(canvas_h, max(1, round(height * scale)))
        new_w = min(canvas_w, max(1, round(width * scale)))
        return {"size": None if scale == 1.0 else [new_h, new_w], "pad": [0, 0, canvas_w - new_w, canvas_h - new_h]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = inpt if params["size"] is None else F.resize(inpt, params["size"], antialias=True)
        if any(params["pad"]):
            out = F.pad(out, params["pad"], fill=fill_for(self.fill, inpt))
        return out


class ColorAugSSD(v2.Transform):
    """SSD colour jitter on the image only, each step with probability 1/2.

    Brightness adds U(-brightness_delta, brightness_delta) to 0-255 pixels; then contrast, saturation
    and hue run in one of two orders (contrast first or last). Contrast multiplies the pixels by a
    factor in `contrast`, saturation scales the distance from grey by a factor in `saturation`, hue
    turns by U(-hue_delta, hue_delta) in OpenCV's hue units (180 per full turn).
    """

    def __init__(
        self,
        brightness_delta: float,
        contrast: tuple[float, float],
        saturation: tuple[float, float],
        hue_delta: float,
    ) -> None:
        super().__init__()
        self.brightness_delta = float(brightness_delta)
        self.contrast = (float(contrast[0]), float(contrast[1]))
        self.saturation = (float(saturation[0]), float(saturation[1]))
        self.hue_delta = float(hue_delta)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        def maybe(value: float) -> float | None:
            return value if _coin() else None

        return {
            "brightness": maybe(_uniform(-self.brightness_delta, self.brightness_delta)),
            "contrast_first": _coin(),
            "contrast": maybe(_uniform(*self.contrast)),
            "saturation": maybe(_uniform(*self.saturation)),
            "hue": maybe(_uniform(-self.hue_delta, self.hue_delta) / 180.0),
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        geometry = tv_tensors.BoundingBoxes | tv_tensors.Mask | tv_tensors.KeyPoints  # [N, K, 2] may look like RGB
        if isinstance(inpt, geometry) or not isinstance(inpt, torch.Tensor):
            return inpt
        if inpt.ndim < 3 or inpt.shape[-3] != 3:
            return inpt  # not an RGB image (labels, ids)
        out = inpt.as_subclass(torch.Tensor)
        if params["brightness"] is not None:
            out = (out.float() + params["brightness"]).clamp(0, 255).to(torch.uint8)

        def contrast(image: torch.Tensor) -> torch.Tensor:
            if params["contrast"] is None:
                return image
            return (image.float() * params["contrast"]).clamp(0, 255).to(torch.uint8)

        def saturation_and_hue(image: torch.Tensor) -> torch.Tensor:
            if params["saturation"] is not None:
                image = F.adjust_saturation(image, params["saturation"])
            if params["hue"] is not None:
                image = F.adjust_hue(image, params["hue"])
            return image

        out = saturation_and_hue(contrast(out)) if params["contrast_first"] else contrast(saturation_and_hue(out))
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out


__all__ = [
    "ColorAugSSD",
    "FitToCanvas",
    "RandomAspectRatio",
    "RandomCrop",
    "ResizeShortestEdge",
    "fill_for",
    "image_size",
    "shortest_edge_shape",
]
