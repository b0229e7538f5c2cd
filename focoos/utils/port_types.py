"""Focoos' `focoos.ports` types that the rest of this package does not need, with Focoos' fields and meaning.

They exist so code written against Focoos imports and builds them; the package's own contracts are in
`focoos.ports`, `focoos.hub.ports` and `focoos.nn.config`.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel

from focoos.errors import ModelNotFoundError
from focoos.hub.ports import ModelStatus
from focoos.nn.config import DictClass
from focoos.ports import Task

__all__ = [
    "DatasetEntry", "DatasetMetadata", "DetectronDict", "DeviceType", "DynamicAxes", "ExportCfg", "ModelNotFound",
    "ModelOutput", "OnnxRuntimeOpts", "OptimizerType", "PydanticBase", "SchedulerType", "StatusTransition",
    "TorchscriptRuntimeOpts",
]

SchedulerType = Literal["POLY", "FIXED", "COSINE", "MULTISTEP"]
OptimizerType = Literal["ADAMW", "SGD", "RMSPROP"]
DeviceType = Literal["cuda", "cpu", "mps"]

# Focoos raises ModelNotFound for unknown models; this package raises ModelNotFoundError, so one name catches both.
ModelNotFound = ModelNotFoundError


class PydanticBase(BaseModel):
    """A pydantic model that also loads from a JSON file path or a dict (Focoos' base of its hub types)."""

    @classmethod
    def from_json(cls, data: str | dict[str, Any]) -> Any:
        if isinstance(data, str):
            with open(data, encoding="utf-8") as fh:
                data = json.load(fh)
        return cls.model_validate(data)


@dataclass
class StatusTransition:
    """One change of a hub model's status, with its time and an optional detail."""

    status: ModelStatus
    timestamp: str
    detail: str | None = None


@dataclass
class OnnxRuntimeOpts:
    """ONNX Runtime options: which execution provider (CUDA, TensorRT, OpenVINO, CoreML), fp16, warmup runs."""

    fp16: bool | None = False
    cuda: bool | None = False
    vino: bool | None = False
    verbose: bool | None = False
    trt: bool | None = False
    coreml: bool | None = False
    warmup_iter: int = 0


@dataclass
class TorchscriptRuntimeOpts:
    """TorchScript runtime options: warmup runs, `torch.jit.optimize_for_inference`, fusion strategy."""

    warmup_iter: int = 0
    optimize_for_inference: bool = True
    set_fusion_strategy: bool = True


@dataclass
class ModelOutput(DictClass):
    """Base of a network's outputs (a dataclass that also reads as a mapping); `loss` while training."""

    loss: dict[str, Any] | None


@dataclass
class DatasetEntry(DictClass):
    """One sample as Focoos' networks take it: image tensor (CHW), its size, instances, file and id."""

    image: Any = None
    height: int | None = None
    width: int | None = None
    instances: Any = None
    file_name: str | None = None
    image_id: int | None = None


@dataclass
class DetectronDict:
    """One dataset record in Detectron2's form (file, size, id, annotations or segmentation files)."""

    file_name: str
    height: int | None = None
    width: int | None = None
    image_id: str | int | None = None
    sem_seg_file_name: str | None = None
    pan_seg_file_name: str | None = None
    annotations: list[dict] | None = None
    segments_info: list[dict] | None = None


@dataclass
class DatasetMetadata:
    """What a dataset declares: task, class names (things for detection, stuff for semantic), colours, roots."""

    num_classes: int
    task: Task
    count: int | None = None
    name: str | None = None
    image_root: str | None = None
    thing_classes: list[str] | None = None
    _thing_colors: list[tuple] | None = None
    stuff_classes: list[str] | None = None
    _stuff_colors: list[tuple] | None = None
    sem_seg_root: str | None = None
    panoptic_root: str | None = None
    ignore_label: int | None = None
    thing_dataset_id_to_contiguous_id: dict | None = None
    stuff_dataset_id_to_contiguous_id: dict | None = None
    json_file: str | None = None
    keypoints: list[str] | None = None
    keypoints_skeleton: list[tuple[int, int]] | None = None

    @property
    def classes(self) -> list[str]:
        """The class names the task uses: stuff classes for semantic segmentation, thing classes otherwise."""
        names = self.stuff_classes if Task(self.task) == Task.SEMSEG else self.thing_classes
        if names is None:
            raise ValueError(f"{'stuff' if Task(self.task) == Task.SEMSEG else 'thing'}_classes is required "
                             f"for {Task(self.task).value}")
        return names

    @staticmethod
    def _colors(names: list[str] | None, start: int) -> list[tuple]:
        return [((i * 64) % 255, (i * 128) % 255, (i * 32) % 255) for i in range(start, len(names or []) + start)]

    @property
    def thing_colors(self) -> list[tuple]:
        return self._thing_colors if self._thing_colors is not None else self._colors(self.thing_classes, 1)

    @property
    def stuff_colors(self) -> list[tuple]:
        return self._stuff_colors if self._stuff_colors is not None else self._colors(self.stuff_classes, 0)

    @classmethod
    def from_dict(cls, metadata: dict[str, Any]) -> DatasetMetadata:
        known = {k: v for k, v in metadata.items() if k in inspect.signature(cls).parameters}
        known["task"] = Task(known["task"])
        return cls(**known)

    @classmethod
    def from_json(cls, path: str) -> DatasetMetadata:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def dump_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, ensure_ascii=False, indent=4, default=str)

    def get(self, attr: str, default: Any = None) -> Any:
        return getattr(self, attr, default)


@dataclass
class ExportCfg:
    """Export settings: output folder, ONNX opset, dynamic axes, simplification, layer fusion, format, device."""

    out_dir: str
    onnx_opset: int = 17
    onnx_dynamic: bool = True
    onnx_simplify: bool = True
    model_fuse: bool = True
    format: Literal["onnx", "torchscript"] = "onnx"
    device: str | None = "cuda"


@dataclass
class DynamicAxes:
    """Input and output names of an exported graph and which of their axes vary."""

    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict
