"""DatasetAugmentations: Focoos' augmentation settings, turned into a torchvision.transforms.v2 pipeline.

Boxes and masks travel with the image as `tv_tensors.BoundingBoxes` and `tv_tensors.Mask`, so every
geometric step moves them the same way as the pixels (masks are resampled nearest-neighbour).
Images stay uint8 because the models normalise inside their graph.

The steps and their order are Focoos': colour, flips, zoom-out, square or aspect-ratio change,
resize (shorter side at the resolution, scale jitter, longer side capped), rotation, crop. One step
is added at the end, `FitToCanvas`, because batches are stacked: Focoos pads each batch to its
largest image at the bottom-right, this pads every sample to the resolution the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from torchvision import tv_tensors
from torchvision.transforms import v2

from focoos.data.transforms import ColorAugSSD, FitToCanvas, RandomAspectRatio, RandomCrop, ResizeShortestEdge
from focoos.ports import Task, to_hw

Side = Annotated[int, Field(ge=32, le=4096)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class DatasetAugmentations(BaseModel):
    """What to randomise during training (Focoos' field names, defaults and meanings).

    - `resolution`: int (square) or (height, width): the size every sample ends at.
    - `color_augmentation`: strength in [0, 1] of the SSD colour jitter: brightness +-color_base_brightness,
      contrast and saturation x(1 +- color_base_contrast / color_base_saturation), hue +-color_base_hue
      (OpenCV units, 180 a turn), each scaled by the strength.
    - `horizontal_flip`, `vertical_flip`: probabilities.
    - `zoom_out`: probability of placing the image on a black canvas up to `zoom_out_side` times larger.
    - `rotation`: fraction of 180 degrees: the angle is uniform in +-rotation*180 (canvas size kept).
    - `square`: probability of resizing straight to the resolution (aspect not kept) before the resize
      step; otherwise `aspect_ratio` stretches one side by 2**U(-aspect_ratio, aspect_ratio).
    - `scale_ratio`: the shorter side is uniform in resolution * [2**-scale_ratio, 2**scale_ratio]
      (square resolutions; a (h, w) resolution is a straight resize to (h, w)); `max_size` caps the
      longer side (None: no cap).
    - `crop`: random crop of `crop_size` x `crop_size` pixels, or of the resolution without crop_size.
    Validation pipelines (`build(train=False)`) keep only the deterministic sizing: square, resize, max_size.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    resolution: Side | tuple[Side, Side] = 640

    color_augmentation: Probability = 0.0
    color_base_brightness: int = Field(32, ge=0, le=255)
    color_base_saturation: float = Field(0.5, ge=0.0, le=1.0)
    color_base_contrast: float = Field(0.5, ge=0.0, le=1.0)
    color_base_hue: float = Field(18, ge=0.0, le=90.0)

    horizontal_flip: Probability = 0.0
    vertical_flip: Probability = 0.0
    zoom_out: Probability = 0.0
    zoom_out_side: float = Field(4.0, ge=1.0, le=8.0)
    rotation: Probability = 0.0
    aspect_ratio: float = Field(0.0, ge=0.0, le=2.0)

    square: Probability = 0.0
    scale_ratio: float = Field(0.0, ge=0.0, le=2.0)
    max_size: int | None = Field(4096, ge=32)

    crop: bool = False
    crop_size: int | None = Field(None, ge=1)

    @property
    def resolution_hw(self) -> tuple[int, int]:
        """The resolution as (height, width)."""
        return to_hw(self.resolution)

    def override(self, args: Any) -> DatasetAugmentations:
        """Set the fields named in a dict or an argparse-style namespace; None values and unknown names are skipped."""
        values = args if isinstance(args, dict) else vars(args)
        for key, value in values.items():
            if key in type(self).model_fields and value is not None:
                setattr(self, key, value)
        return self

    def get_augmentations(self, img_format: str = "RGB", task: Task | str | None = None) -> list[v2.Transform]:
        """The training steps as a list (Focoos' method); images are always RGB here, so img_format is unused.

        Semantic segmentation (`task`) fills uncovered mask areas with 255 (ignore) instead of 0.
        """
        mask_fill = 255 if task is not None and Task(task) == Task.SEMSEG else 0
        return self.steps(train=True, mask_fill=mask_fill)

    def steps(self, train: bool, mask_fill: int = 0) -> list[v2.Transform]:
        """The pipeline's steps: all of them for training, the sizing ones for evaluation."""

        def fill() -> dict[Any, int]:  # a fresh dict per transform: torchvision converts it in place
            return {tv_tensors.Image: 0, tv_tensors.Mask: mask_fill, "others": 0}

        size_hw = self.resolution_hw
        steps: list[v2.Transform] = []
        if train and self.color_augmentation > 0:
            strength = self.color_augmentation
            steps.append(
                ColorAugSSD(
                    brightness_delta=int(self.color_base_brightness * strength),
                    contrast=(1 - self.color_base_contrast * strength, 1 + self.color_base_contrast * strength),
                    saturation=(1 - self.color_base_saturation * strength, 1 + self.color_base_saturation * strength),
                    hue_delta=int(self.color_base_hue * strength),
                )
            )
        if train and self.horizontal_flip > 0:
            steps.append(v2.RandomHorizontalFlip(p=self.horizontal_flip))
        if train and self.vertical_flip > 0:
            steps.append(v2.RandomVerticalFlip(p=self.vertical_flip))
        if train and self.zoom_out > 0 and self.zoom_out_side > 1.0:
            steps.append(v2.RandomZoomOut(fill=fill(), side_range=(1.0, self.zoom_out_side), p=self.zoom_out))
        if self.square > 0:
            square = v2.Resize(size_hw, antialias=True)
            steps.append(square if not train or self.square >= 1 else v2.RandomApply([square], p=self.square))
        elif train and self.aspect_ratio > 0:
            steps.append(RandomAspectRatio(self.aspect_ratio))
        if size_hw[0] != size_hw[1]:
            steps.append(v2.Resize(size_hw, antialias=True))  # Focoos ignores scale_ratio here too
        else:
            scale = 2.0 ** self.scale_ratio if train else 1.0
            low, high = int(size_hw[0] / scale), int(size_hw[0] * scale)
            steps.append(ResizeShortestEdge((low, high), max_size=self.max_size))
        if train and self.rotation > 0:
            steps.append(v2.RandomRotation(degrees=self.rotation * 180.0, fill=fill()))
        if train and self.crop:
            steps.append(RandomCrop((self.crop_size, self.crop_size) if self.crop_size else size_hw))
        steps.append(FitToCanvas(size_hw, fill=fill()))
        return steps

    def build(self, train: bool, with_boxes: bool = True, mask_fill: int = 0) -> v2.Compose:
        """The pipeline for one sample dict {"image": Image, "boxes": BoundingBoxes, "labels": Tensor}.

        Samples may also hold a `tv_tensors.Mask`: per-instance masks [N,H,W], which the sanitising
        step drops together with their boxes, or a semantic class map [H,W]. `with_boxes=False`
        (classification and semantic samples) leaves out the box sanitising step, which needs boxes.
        `mask_fill` is the mask value of areas that zoom-out, rotation and padding uncover (255 =
        ignore for semantic maps).
        """
        return compose(self.steps(train, mask_fill), with_boxes)


# Per-object entries of a sample that must be dropped together with their boxes (masks are dropped by torchvision).
PER_OBJECT_KEYS = ("labels", "keypoints", "keypoints_visible")


def _per_object(sample: Any) -> tuple[Any, ...]:
    return tuple(sample[key] for key in PER_OBJECT_KEYS if key in sample)


def compose(steps: list[v2.Transform], with_boxes: bool) -> v2.Compose:
    """The steps, then (for box samples) boxes clamped to the image and those under a pixel dropped."""
    if with_boxes:
        steps = [*steps, v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0, labels_getter=_per_object)]
    return v2.Compose(steps)


__all__ = ["DatasetAugmentations", "compose"]
