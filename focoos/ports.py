"""Data contracts shared by the model API, the builder, the client and training.

Pydantic models only: no torch, so the client and the Python-backend steps can import them.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from focoos.errors import ModelInfoError
from focoos.nn.config import DictClass, ModelConfig  # noqa: F401  (Focoos: focoos.ports.ModelConfig)


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

    @classmethod
    def register(cls, name: str) -> ModelFamily:
        """Make a family declared outside this package (focoos.models.family.register_family) a value."""
        if name not in cls._value2member_map_:
            member = str.__new__(cls, name)
            member._name_, member._value_ = name.upper(), name
            cls._value2member_map_[name] = member
        return cls._value2member_map_[name]

    @classmethod
    def _missing_(cls, value: object) -> ModelFamily | None:
        return cls._value2member_map_.get(value) if isinstance(value, str) else None


class ArtifactName(str, Enum):
    """File names of a model folder and a training run, the same locally and on the hub (Focoos' names)."""

    WEIGHTS = "model_final.pth"
    ONNX = "model.onnx"
    PT = "model.pt"
    INFO = "model_info.json"
    METRICS = "metrics.json"
    LOGS = "log.txt"


class ExportFormat(str, Enum):
    """The file format an export writes; several runtimes share one format."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"


class RuntimeType(str, Enum):
    """How an exported model runs: ONNX Runtime with a provider, or TorchScript. str() is the value."""

    ONNX_CUDA32 = "onnx_cuda32"
    ONNX_TRT32 = "onnx_trt32"
    ONNX_TRT16 = "onnx_trt16"
    ONNX_CPU = "onnx_cpu"
    ONNX_COREML = "onnx_coreml"
    TORCHSCRIPT_32 = "torchscript_32"

    def __str__(self) -> str:
        return self.value

    @property
    def is_onnx(self) -> bool:
        return self.value.startswith("onnx")

    def to_export_format(self) -> ExportFormat:
        return ExportFormat.ONNX if self.is_onnx else ExportFormat.TORCHSCRIPT


class ModelExtension(str, Enum):
    """File extensions of exported models (`model.onnx`, `model.pt`) and of weights (`model_final.pth`)."""

    ONNX = "onnx"
    TORCHSCRIPT = "pt"
    WEIGHTS = "pth"

    @classmethod
    def from_runtime_type(cls, runtime_type: RuntimeType | str) -> ModelExtension:
        return cls.ONNX if RuntimeType(runtime_type).is_onnx else cls.TORCHSCRIPT


class DatasetLayout(str, Enum):
    """How a dataset folder is organised (Focoos' names); AutoDataset reads all but CATALOG.

    ROBOFLOW_COCO: split folders with `_annotations.coco.json` beside the images (detection, instseg).
    ROBOFLOW_SEG: split folders with `<stem>_mask.png` per image and `_classes.csv` (semseg).
    CLS_FOLDER: split folders with one sub-folder of images per class (classification).
    CATALOG: Focoos' internal catalogue format.
    """

    ROBOFLOW_COCO = "roboflow_coco"
    ROBOFLOW_SEG = "roboflow_seg"
    CATALOG = "catalog"
    CLS_FOLDER = "cls_folder"


class DatasetSplitType(str, Enum):
    """A dataset split; its folder is train|training, valid|val|validation or test|testing."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Scheduler(str, Enum):
    """Learning-rate schedules (Focoos' names). Their options go in `TrainerArgs.scheduler_extra`."""

    MULTISTEP = "MULTISTEP"
    COSINE = "COSINE"
    POLY = "POLY"
    FIXED = "FIXED"


class OptimizerName(str, Enum):
    """Optimizers (Focoos' names): torch.optim.AdamW, SGD and RMSprop; keyword options in `optimizer_extra`."""

    ADAMW = "ADAMW"
    SGD = "SGD"
    RMSPROP = "RMSPROP"


WARMUP_OPTIONS = ("warmup_factor", "warmup_iters", "warmup_method")
WARMUP_METHODS = ("constant", "linear", "quadratic")
# The keyword options each of Focoos' schedulers takes (FIXED takes none: Focoos' constant lr has no warmup).
SCHEDULER_OPTIONS: dict[Scheduler, tuple[str, ...]] = {
    Scheduler.MULTISTEP: ("milestones", "gamma", *WARMUP_OPTIONS),
    Scheduler.COSINE: WARMUP_OPTIONS,
    Scheduler.POLY: ("power", "constant_ending", *WARMUP_OPTIONS),
    Scheduler.FIXED: (),
}


def _default_output_dir() -> str:
    """Focoos' MODELS_DIR, read when the args are made so FOCOOS_MODELS_DIR set later still counts."""
    from focoos.settings import models_dir

    return str(models_dir())


def _visible_gpus() -> int:
    """Focoos' default num_gpus: the CUDA devices (1 for Apple's MPS), 0 without a GPU or without torch."""
    try:
        import torch
    except ImportError:
        return 0
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return 1 if torch.backends.mps.is_available() else 0


class TrainerArgs(BaseModel):
    """Training options: Focoos' fields, defaults and meaning. Unknown or invalid fields fail, naming the field.

    Parameter groups follow Focoos: modules named *backbone* train at lr * backbone_multiplier, *pixel_decoder*
    at lr * decoder_multiplier (the backbone sits inside it, so both apply there), *head* (but not *classifier*)
    at lr * head_multiplier; a part whose multiplier is 0 also gets no weight decay. Norm layers decay by
    weight_decay_norm, embeddings and `pos_embed` by weight_decay_embed, the rest by weight_decay.
    """

    model_config = ConfigDict(extra="forbid")

    run_name: str
    output_dir: str = Field(default_factory=_default_output_dir)  # the run goes to output_dir/run_name
    ckpt_dir: str | None = None  # checkpoints elsewhere than the run folder
    init_checkpoint: str | None = None  # weights loaded before training
    resume: bool = False  # continue from the last checkpoint in ckpt_dir
    num_gpus: int = Field(default_factory=_visible_gpus, ge=0)  # > 1: one DDP worker per device
    device: str = "cuda"  # cuda (when available, else CPU), cpu, mps or auto
    workers: int = Field(4, ge=0)  # data-loading processes
    amp_enabled: bool = True  # float16 autocast on CUDA
    ddp_broadcast_buffers: bool = False
    ddp_find_unused: bool = True
    checkpointer_period: int = Field(1000, ge=1)
    checkpointer_max_to_keep: int = Field(1, ge=1)
    eval_period: int = Field(200, ge=1)
    log_period: int = Field(20, ge=1)
    samples: int = Field(9, ge=0)  # prediction previews saved at each evaluation (output_dir/run_name/preview)
    seed: int = 42  # negative: a random seed, recorded in the run's train_args
    early_stop: bool = True
    patience: int = Field(10, ge=1)  # evaluations without improvement before an early stop
    ema_enabled: bool = False
    ema_decay: float = Field(0.999, gt=0, lt=1)
    ema_warmup: int = Field(2000, ge=0)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    max_iters: int = Field(3000, ge=1)
    batch_size: int = Field(16, ge=1)
    scheduler: Scheduler = Scheduler.MULTISTEP
    scheduler_extra: dict[str, Any] | None = None  # e.g. {"milestones": [0.8, 0.9], "gamma": 0.1, "warmup_iters": 50}
    optimizer: OptimizerName = OptimizerName.ADAMW
    optimizer_extra: dict[str, Any] | None = None  # keyword arguments of the torch optimizer, e.g. {"momentum": 0.9}
    weight_decay_norm: float = Field(0.0, ge=0)
    weight_decay_embed: float = Field(0.0, ge=0)
    backbone_multiplier: float = Field(0.1, ge=0)
    decoder_multiplier: float = Field(1.0, ge=0)
    head_multiplier: float = Field(1.0, ge=0)
    freeze_bn: bool = False  # batch norms keep their statistics and affine weights
    clip_gradients: float = Field(0.1, ge=0)  # max gradient norm of the whole model; 0 = no clipping
    size_divisibility: int = Field(0, ge=0)  # pad each training batch's height and width to a multiple
    gather_metric_period: int = Field(1, ge=1)  # read (and check, and average over workers) the losses every N steps
    zero_grad_before_forward: bool = False  # clear gradients before the forward pass instead of after it
    sync_to_hub: bool = False
    # Not a Focoos field: a linear warmup from 0.001 * lr over this many steps (scheduler_extra's own warmup wins).
    warmup_iters: int = Field(0, ge=0)

    @field_validator("scheduler", "optimizer", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value  # Focoos reads the names case-insensitively

    @model_validator(mode="after")
    def _smoke_run_caps(self) -> TrainerArgs:
        """FOCOOS_MAX_ITERS caps max_iters and FOCOOS_MAX_BATCH_SIZE caps batch_size, so an unchanged script
        (a tutorial, a CI check) trains for a few cheap steps; unset, nothing is capped."""
        for variable, name in (("FOCOOS_MAX_ITERS", "max_iters"), ("FOCOOS_MAX_BATCH_SIZE", "batch_size")):
            cap = os.environ.get(variable, "").strip()
            if cap:
                if not cap.isdigit() or int(cap) < 1:
                    raise ValueError(f"{variable} must be a positive integer, got {cap!r}")
                setattr(self, name, min(getattr(self, name), int(cap)))
        return self

    @model_validator(mode="after")
    def _scheduler_extra_fits(self) -> TrainerArgs:
        extra = self.scheduler_extra or {}
        allowed = SCHEDULER_OPTIONS[self.scheduler]
        unknown = sorted(set(extra) - set(allowed))
        if unknown:
            raise ValueError(
                f"scheduler_extra: {', '.join(unknown)} not an option of {self.scheduler.value} "
                f"(it takes {', '.join(allowed) or 'none'})"
            )
        milestones = extra.get("milestones", [])
        if list(milestones) != sorted(milestones):
            raise ValueError(f"scheduler_extra: milestones must increase, got {milestones}")
        if extra.get("warmup_method", "linear") not in WARMUP_METHODS:
            raise ValueError(f"scheduler_extra: warmup_method must be one of {', '.join(WARMUP_METHODS)}")
        return self


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


# ModelInfo.status of a model whose weights are random (built with the explicit opt-in, never trained).
RANDOM_WEIGHTS_STATUS = "RANDOM_WEIGHTS"


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

    @property
    def untrained(self) -> bool:
        """True when this info describes random weights (see as_untrained)."""
        return self.status == RANDOM_WEIGHTS_STATUS

    def as_untrained(self) -> ModelInfo:
        """This info for a network holding random weights: no trained status, metrics or weights source."""
        return self.model_copy(update={"status": RANDOM_WEIGHTS_STATUS, "val_metrics": None, "val_dataset": None,
                                       "weights_uri": None, "weights_sha256": None})

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
        if not isinstance(data, dict):
            raise ModelInfoError(f"invalid {origin}: expected a JSON object, got {type(data).__name__}")
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
        except (TypeError, ValueError) as exc:  # a validator handed a value of the wrong type
            raise ModelInfoError(f"invalid {origin}: {exc}") from exc

    def dump_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, exclude_none=True))
        return path

    def summary(self) -> str:
        """The lines `pprint` prints: name, description, family, task, classes, size, metrics."""
        lines = [
            f"Name: {self.name}",
            f"Description: {self.description}",
            f"Family: {self.model_family.value}",
            f"Focoos Model: {self.focoos_model}",
            f"Task: {self.task.value}",
            f"Classes: {self.classes}",
            f"Im size: {self.im_size}",
        ]
        if self.val_metrics:
            lines.append(f"Val metrics ({self.val_dataset or 'validation set'}): {self.val_metrics}")
        return "\n".join(lines)

    def pprint(self) -> None:
        """Print the model's main facts."""
        print(self.summary())


def seconds_since(start: float) -> float:
    """Seconds elapsed since a `time.perf_counter()` reading, to the microsecond (InferLatency's unit)."""
    return round(time.perf_counter() - start, 6)


class InferLatency(BaseModel):
    """Time spent per stage of one call, in SECONDS (as in Focoos; LatencyMetrics is in milliseconds)."""

    imload: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    annotate: float | None = None


class FocoosDet(BaseModel):
    """One detection: bbox is xyxy in pixels of the original image.

    `mask` (segmentation) is the binary mask cropped to the bbox, PNG-encoded, base64: decode it
    with `focoos.processing.decode_mask` and place it at (bbox[0], bbox[1]). `keypoints` (keypoint
    detection) is [[x, y, score], ...] per keypoint, x and y in whole pixels of the original image.
    """

    bbox: list[int] | None = None
    conf: float
    cls_id: int
    label: str | None = None
    mask: str | None = None
    keypoints: list[list[float]] | None = None

    @classmethod
    def from_json(cls, data: str | Path | dict[str, Any]) -> FocoosDet:
        """From a dict (e.g. a served JSON result) or a JSON file; float boxes are rounded to pixels."""
        fields = dict(data) if isinstance(data, dict) else json.loads(Path(data).read_text())
        if fields.get("bbox") is not None:
            fields["bbox"] = [int(round(float(v))) for v in fields["bbox"]]
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise ModelInfoError(f"invalid detection {fields}: {problems}") from exc

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, ("hidden" if name == "mask" and value is not None else value)


class FocoosDetections(BaseModel):
    """Result of one image. `image` holds the annotated RGB image when annotate=True."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    detections: list[FocoosDet] = Field(default_factory=list)
    image: np.ndarray | str | None = Field(default=None, exclude=True)
    latency: InferLatency | None = None

    def __len__(self) -> int:
        return len(self.detections)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, ("hidden" if name == "image" and value is not None else value)

    def class_counts(self) -> str:
        """'2 car, 1 person' (sorted by name); 'No detections!' when empty."""
        counts = Counter(d.label or f"(id_class={d.cls_id})" for d in self.detections)
        return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "No detections!"

    def latency_summary(self) -> str:
        """'Latency: imload 3ms, ..., total 20ms' from the stages measured (InferLatency is in seconds)."""
        if self.latency is None:
            return "Latency: not measured"
        stages = self.latency.model_dump(exclude_none=True)
        parts = [f"{name} {seconds * 1000:.0f}ms" for name, seconds in stages.items()]
        return f"Latency: {', '.join(parts)}, total {sum(stages.values()) * 1000:.0f}ms"

    def infer_print(self) -> None:
        """Print the one-glance summary: detections per class, then the latency per stage."""
        print(f"{self.class_counts()}\n{self.latency_summary()}")

    def pprint(self) -> None:
        """Print every detection (label, confidence, box, size, mask) and the latencies in seconds."""
        rule = "=" * 50
        lines = [rule, "DETECTION RESULTS", rule, f"Found {len(self.detections)} detections", ""]
        for i, det in enumerate(self.detections, 1):
            x1, y1, x2, y2 = det.bbox or [-1, -1, -1, -1]
            lines += [
                f"  {i}. {det.label or f'Class {det.cls_id}'}",
                f"     Confidence: {det.conf:.3f}",
                f"     Bbox: [{x1}, {y1}, {x2}, {y2}]",
                f"     Size: {x2 - x1} x {y2 - y1}",
            ]
            if det.mask:
                lines.append("     Has mask: Yes (base64 encoded)")
            lines.append("")
        if self.latency is not None:
            lines += ["Latencies:", "-" * 50]
            lines += [f"  {name}: {value:.3f}s" for name, value in self.latency.model_dump(exclude_none=True).items()]
        lines.append(rule)
        print("\n".join(lines))

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

    @property
    def keypoints(self) -> np.ndarray:
        """[N, K, 3] float32 (x, y, score) of detections that carry keypoints."""
        points = [d.keypoints for d in self.detections if d.keypoints is not None]
        return np.asarray(points, dtype=np.float32) if points else np.zeros((0, 0, 3), dtype=np.float32)

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

    def to_supervision_keypoints(self, keypoints_threshold: float = 0.5) -> Any:
        """Convert to `supervision.KeyPoints` (needs the `viz` extra), as Focoos does: keypoints scoring below
        the threshold become (0, 0) with score 0, which supervision's annotators skip."""
        import supervision as sv

        points = self.keypoints.copy()
        points[points[..., 2] < keypoints_threshold] = 0
        class_id = np.asarray([d.cls_id for d in self.detections if d.keypoints is not None], dtype=int)
        return sv.KeyPoints(points[..., :2], class_id, points[..., 2])  # positional: the score's keyword moved

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
