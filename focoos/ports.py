"""Data contracts shared by the model API, the builder, the client and training.

Pydantic models only: no torch, so the client and the Python-backend steps can import them.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from focoos.errors import ModelInfoError


def to_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """An image size as (height, width); an int means a square."""
    if isinstance(size, int):
        return (size, size)
    height, width = size
    return (int(height), int(width))


class Task(str, Enum):
    DETECTION = "detection"
    SEMSEG = "semseg"
    INSTANCE_SEGMENTATION = "instseg"
    CLASSIFICATION = "classification"
    KEYPOINT = "keypoint"


class ModelFamily(str, Enum):
    DETR = "fai_detr"
    MASKFORMER = "fai_mf"
    BISENETFORMER = "bisenetformer"
    IMAGE_CLASSIFIER = "fai_cls"
    RTMO = "rtmo"


class RuntimeType(str, Enum):
    ONNX_CUDA32 = "onnx_cuda32"
    ONNX_TRT32 = "onnx_trt32"
    ONNX_TRT16 = "onnx_trt16"
    ONNX_CPU = "onnx_cpu"
    ONNX_COREML = "onnx_coreml"
    TORCHSCRIPT_32 = "torchscript_32"

    @property
    def is_onnx(self) -> bool:
        return self.value.startswith("onnx")


class DatasetLayout(str, Enum):
    ROBOFLOW_COCO = "roboflow_coco"
    ROBOFLOW_SEG = "roboflow_seg"
    CATALOG = "catalog"
    CLS_FOLDER = "cls_folder"


class DatasetSplitType(str, Enum):
    TRAIN = "train"
    VAL = "val"


class Scheduler(str, Enum):
    MULTISTEP = "MULTISTEP"
    COSINE = "COSINE"
    POLY = "POLY"
    FIXED = "FIXED"


class OptimizerName(str, Enum):
    ADAMW = "ADAMW"
    SGD = "SGD"


class TrainerArgs(BaseModel):
    """Training options (Focoos names and defaults). Unknown or invalid fields fail, naming the field."""

    model_config = ConfigDict(extra="forbid")

    run_name: str
    output_dir: str = "runs"
    ckpt_dir: str | None = None
    init_checkpoint: str | None = None
    resume: bool = False
    num_gpus: int = Field(1, ge=0)
    device: str = "auto"
    workers: int = Field(0, ge=0)
    amp_enabled: bool = True
    ddp_broadcast_buffers: bool = False
    ddp_find_unused: bool = True
    checkpointer_period: int = Field(1000, ge=1)
    checkpointer_max_to_keep: int = Field(1, ge=1)
    eval_period: int = Field(200, ge=1)
    log_period: int = Field(20, ge=1)
    samples: int = Field(9, ge=0)
    seed: int = 42
    early_stop: bool = True
    patience: int = Field(10, ge=1)
    ema_enabled: bool = False
    ema_decay: float = Field(0.999, gt=0, lt=1)
    ema_warmup: int = Field(2000, ge=0)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    max_iters: int = Field(3000, ge=1)
    batch_size: int = Field(16, ge=1)
    scheduler: Scheduler = Scheduler.MULTISTEP
    scheduler_extra: dict[str, Any] | None = None
    warmup_iters: int = Field(50, ge=0)
    optimizer: OptimizerName = OptimizerName.ADAMW
    optimizer_extra: dict[str, Any] | None = None
    backbone_multiplier: float = Field(0.1, ge=0)
    freeze_bn: bool = False
    clip_gradients: float = Field(0.1, ge=0)
    size_divisibility: int = 0
    sync_to_hub: bool = False


class LatencyMetrics(BaseModel):
    """Latency of repeated calls, in milliseconds (fps from the mean)."""

    fps: float
    engine: str
    min: float
    max: float
    mean: float
    std: float
    p50: float | None = None
    p95: float | None = None
    im_size: int | tuple[int, int]
    device: str

    @classmethod
    def from_samples_ms(
        cls, samples_ms: list[float], engine: str, im_size: int | tuple[int, int], device: str
    ) -> LatencyMetrics:
        arr = np.asarray(samples_ms, dtype=np.float64)
        mean = float(arr.mean())
        return cls(
            fps=round(1000.0 / mean, 2) if mean > 0 else 0.0,
            engine=engine,
            min=round(float(arr.min()), 3),
            max=round(float(arr.max()), 3),
            mean=round(mean, 3),
            std=round(float(arr.std()), 3),
            p50=round(float(np.percentile(arr, 50)), 3),
            p95=round(float(np.percentile(arr, 95)), 3),
            im_size=im_size,
            device=device,
        )


class ModelInfo(BaseModel):
    """Everything needed to rebuild, pre/postprocess and describe a model; stored as model_info.json.

    `config` holds the family's architecture options and the preprocessing facts
    (`num_classes`, `pixel_mean`, `pixel_std`) that the builder and the client read.
    """

    model_config = ConfigDict(extra="ignore", protected_namespaces=(), use_enum_values=False)

    name: str
    model_family: ModelFamily
    classes: list[str]
    im_size: int | tuple[int, int]
    task: Task
    config: dict[str, Any] = Field(default_factory=dict)
    ref: str | None = None
    focoos_model: str | None = None
    status: str | None = None
    description: str | None = None
    train_args: dict[str, Any] | None = None
    weights_uri: str | None = None
    weights_sha256: str | None = None
    val_dataset: str | None = None
    val_metrics: dict[str, Any] | None = None
    focoos_version: str | None = None
    latency: list[LatencyMetrics] | None = None
    training_info: dict[str, Any] | None = None
    updated_at: str | None = None

    @field_validator("classes")
    @classmethod
    def _classes_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("classes must list at least one class name")
        return value

    @field_validator("im_size")
    @classmethod
    def _im_size_positive(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        sizes = (value,) if isinstance(value, int) else value
        if any(s < 32 for s in sizes):
            raise ValueError(f"im_size must be at least 32 pixels, got {value}")
        return value

    @model_validator(mode="after")
    def _num_classes_matches(self) -> ModelInfo:
        num_classes = self.config.get("num_classes")
        if num_classes is not None and int(num_classes) != len(self.classes):
            raise ValueError(
                f"config.num_classes={num_classes} does not match the {len(self.classes)} names in classes"
            )
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) the network expects."""
        return to_hw(self.im_size)

    @classmethod
    def from_json(cls, source: str | Path | dict[str, Any]) -> ModelInfo:
        """Read a model_info.json path or dict; invalid content raises ModelInfoError naming the field."""
        if isinstance(source, dict):
            data, origin = source, "model info"
        else:
            path = Path(source)
            if not path.is_file():
                raise ModelInfoError(f"model info file not found: {path}")
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ModelInfoError(f"{path} is not valid JSON: {exc}") from exc
            origin = str(path)
        return cls.validated(origin, **data)

    @classmethod
    def validated(cls, origin: str, **fields: Any) -> ModelInfo:
        """Build a ModelInfo, turning pydantic's errors into a ModelInfoError that names each field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'model'}: {err['msg']}" for err in exc.errors()
            )
            raise ModelInfoError(f"invalid {origin}: {problems}") from exc

    def dump_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, exclude_none=True))
        return path


class InferLatency(BaseModel):
    """Time spent per stage of one call, in milliseconds."""

    imload: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    annotate: float | None = None


class FocoosDet(BaseModel):
    """One detection: bbox is xyxy in pixels of the original image.

    `mask` (segmentation) is the binary mask cropped to the bbox, PNG-encoded, base64: decode it
    with `focoos.processing.decode_mask` and place it at (bbox[0], bbox[1]).
    """

    bbox: list[int] | None = None
    conf: float
    cls_id: int
    label: str | None = None
    mask: str | None = None
    keypoints: list[list[float]] | None = None


class FocoosDetections(BaseModel):
    """Result of one image. `image` holds the annotated RGB image when annotate=True."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    detections: list[FocoosDet] = Field(default_factory=list)
    image: np.ndarray | str | None = Field(default=None, exclude=True)
    latency: InferLatency | None = None

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def xyxy(self) -> np.ndarray:
        """[N, 4] float32 boxes (empty rows for detections without a box)."""
        boxes = [d.bbox for d in self.detections if d.bbox is not None]
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    @property
    def confidence(self) -> np.ndarray:
        return np.asarray([d.conf for d in self.detections], dtype=np.float32)

    @property
    def class_id(self) -> np.ndarray:
        return np.asarray([d.cls_id for d in self.detections], dtype=np.int64)

    def masks(self, image_hw: tuple[int, int]) -> np.ndarray:
        """Full-size boolean masks [N, H, W] of detections that carry one (segmentation)."""
        from focoos.processing import decode_mask, paste_mask

        full = [paste_mask(decode_mask(d.mask), d.bbox, image_hw) for d in self.detections if d.mask and d.bbox]
        return np.asarray(full, dtype=bool).reshape(-1, *image_hw)

    def label_map(self, image_hw: tuple[int, int], ignore: int = 255) -> np.ndarray:
        """Semantic segmentation: class id per pixel [H, W] (int32); unlabelled pixels get `ignore`."""
        from focoos.processing import label_map

        dets = [d for d in self.detections if d.mask and d.bbox]
        boxes = np.asarray([d.bbox for d in dets], dtype=np.float32).reshape(-1, 4)
        return label_map(boxes, [d.mask for d in dets], np.asarray([d.cls_id for d in dets]), image_hw, ignore)

    def to_supervision(self, image_hw: tuple[int, int] | None = None) -> Any:
        """Convert to `supervision.Detections` (needs the `viz` extra); masks too when image_hw is given."""
        import supervision as sv

        has_masks = image_hw is not None and any(d.mask for d in self.detections)
        return sv.Detections(
            xyxy=self.xyxy,
            mask=self.masks(image_hw) if has_masks else None,
            confidence=self.confidence,
            class_id=self.class_id,
            data={"class_name": np.asarray([d.label or "" for d in self.detections])},
        )

    @classmethod
    def from_supervision(cls, detections: Any, classes: list[str] | None = None) -> FocoosDetections:
        """From `supervision.Detections`; its full-size masks, if any, become cropped PNG masks."""
        from focoos.processing import encode_mask, mask_box, to_base64

        dets = []
        for i in range(len(detections)):
            cls_id = int(detections.class_id[i]) if detections.class_id is not None else 0
            conf = round(float(detections.confidence[i]), 6) if detections.confidence is not None else 1.0
            bbox = [int(round(v)) for v in detections.xyxy[i]]
            mask = None
            if detections.mask is not None and (tight := mask_box(detections.mask[i])) is not None:
                bbox = list(tight)  # the crop must start at the box corner
                mask = to_base64(encode_mask(detections.mask[i][bbox[1] : bbox[3], bbox[0] : bbox[2]]))
            dets.append(
                FocoosDet(
                    bbox=bbox,
                    conf=conf,
                    cls_id=cls_id,
                    label=classes[cls_id] if classes and cls_id < len(classes) else None,
                    mask=mask,
                )
            )
        return cls(detections=dets)
