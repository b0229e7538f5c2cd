"""What a model family declares, once: every part that differs between families reads it from here.

A family is a package (`focoos/models/<family>/` for the built-in ones, any importable package for
others) whose `__init__.py` defines `FAMILY = FamilySpec(...)` and imports nothing heavy. Beside it,
by name: `config.py` (its typed config), `modelling.py` (`build_model(config, num_classes)`, torch),
`processor.py` (numpy only: `postprocess(...)` and `postprocess_options(config)`; the builder copies
this file into the Triton postprocess step). Its loss is named by `criterion` ("module:Class" with a
`from_config(num_classes, config)` constructor).

The model builder, the local pipeline, the repository builder, the criterion factory and the tests
all go through `family_spec(...)`; adding a family is a new package plus its registry JSONs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from focoos.errors import UnsupportedFamilyError
from focoos.ports import ModelInfo

OutputDims = Callable[[ModelInfo], dict[str, list[int]]]


@dataclass(frozen=True)
class FamilySpec:
    """One model family: its name in the registry JSONs, the tasks it does, where its code lives, the
    network's outputs (name -> per-image dims, -1 where the size varies, in the network's order) and
    its serving defaults."""

    name: str
    tasks: tuple[str, ...]
    package: str
    outputs: OutputDims
    criterion: str | None = None
    # Detections kept per image when the config sets no top_k; None: one per class (classifiers).
    top_k: int | None = None
    # Eager inference runs each image at its own size (Focoos' segmenters); exported graphs take im_size.
    native_size: bool = False

    def module(self, name: str) -> ModuleType:
        """One of the family's modules by its conventional name (config, modelling, processor)."""
        return importlib.import_module(f"{self.package}.{name}")

    @property
    def processor(self) -> ModuleType:
        return self.module("processor")

    @property
    def processor_file(self) -> Path:
        """The numpy postprocessing module, which the builder copies into the Triton step."""
        return Path(self.processor.__file__ or "")

    def output_names(self, info: ModelInfo) -> list[str]:
        """The network's outputs in the order its forward returns them."""
        return list(self.outputs(info))

    def check_task(self, info: ModelInfo) -> None:
        if info.task.value not in self.tasks:
            raise UnsupportedFamilyError(f"{info.name}: family '{self.name}' does not do task '{info.task.value}'")

    def build_network(self, info: ModelInfo) -> Any:
        """The family's torch module with random weights (weights load separately)."""
        self.check_task(info)
        network = self.module("modelling").build_model(info.config, info.num_classes)
        network.output_names = tuple(self.output_names(info))  # export, runtimes and the builder read these
        return network

    def build_criterion(self, info: ModelInfo) -> Any:
        """The family's training loss (imports torch and the training package)."""
        if self.criterion is None:
            raise NotImplementedError(f"no training loss for family {self.name}")
        module, _, cls = self.criterion.partition(":")
        return getattr(importlib.import_module(module), cls).from_config(info.num_classes, info.config)

    def default_top_k(self, info: ModelInfo) -> int:
        """The config's top_k, else the family's; a classifier keeps one score per class."""
        if info.config.get("top_k") is not None:
            return int(info.config["top_k"])
        return info.num_classes if self.top_k is None else self.top_k

    def postprocess_options(self, info: ModelInfo) -> dict[str, Any]:
        """The config's postprocessing flags with the family's defaults, as the processor takes them."""
        return dict(self.processor.postprocess_options(info.config))

    def postprocess(self, info: ModelInfo, outputs: dict, original_hw: list, threshold: float, top_k: int) -> list:
        """Raw outputs -> DetectionArrays per image, through the family's processor."""
        return self.processor.postprocess(info.task.value, outputs, original_hw, threshold, top_k,
                                          **self.postprocess_options(info))


def mask_head_outputs(num_queries: int) -> OutputDims:
    """The outputs of a MaskFormer-style head, for families that share it: masks at 1/4 of the input (-1: the
    network rounds) and class logits, per query (the config's num_queries, else the family's)."""

    def outputs(info: ModelInfo) -> dict[str, list[int]]:
        queries = int(info.config.get("num_queries") or num_queries)
        return {"masks": [queries, -1, -1], "logits": [queries, info.num_classes]}

    return outputs


_FAMILIES: dict[str, FamilySpec] = {}
_DISCOVERED = False


def register_family(spec: FamilySpec) -> FamilySpec:
    """Make a family known (the built-in ones register themselves when discovered); returns the spec."""
    _FAMILIES[spec.name] = spec
    from focoos.ports import ModelFamily

    ModelFamily.register(spec.name)
    return spec


def _discover() -> None:
    """Register every family package under focoos.models (imports only their torch-free __init__)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import focoos.models

    for found in pkgutil.iter_modules(focoos.models.__path__):
        # a family package has a processor (shared blocks such as backbones do not, and may import torch)
        if found.ispkg and (Path(getattr(found.module_finder, "path", "")) / found.name / "processor.py").is_file():
            spec = getattr(importlib.import_module(f"focoos.models.{found.name}"), "FAMILY", None)
            if isinstance(spec, FamilySpec) and spec.name not in _FAMILIES:
                register_family(spec)


def families() -> dict[str, FamilySpec]:
    """Every known family by name."""
    _discover()
    return dict(_FAMILIES)


def family_spec(family: object) -> FamilySpec:
    """The spec of a family (a ModelFamily or its name); UnsupportedFamilyError for an unknown one."""
    name = getattr(family, "value", family)
    known = families()
    if name not in known:
        raise UnsupportedFamilyError(f"model family '{name}' is not implemented; supported: {', '.join(known)}")
    return known[name]
