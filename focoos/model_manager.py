"""ModelManager.get: one entry point that loads a FocoosModel from several kinds of source.

The sources form a table of (name, matches, load) strategies tried in order; a new source (the
hub) joins with `ModelManager.register_strategy` without touching the others.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focoos.errors import ModelInfoError, ModelNotFoundError
from focoos.model_registry import ModelRegistry
from focoos.models import build_network, check_supported
from focoos.nn.config import ModelConfig
from focoos.ports import RANDOM_WEIGHTS_STATUS, ArtifactName, ModelInfo
from focoos.settings import models_dir
from focoos.weights import WeightsUnreachableError, cached_weights_path, load_weights, resolve_weights

if TYPE_CHECKING:
    from focoos.focoos_model import FocoosModel

WEIGHTS_FILE = ArtifactName.WEIGHTS.value
INFO_FILE = ArtifactName.INFO.value
# Overrides that change ModelInfo itself; every other keyword overrides one config value.
INFO_OVERRIDES = ("im_size", "weights_uri", "weights_sha256")
# Config keys every family accepts beyond its network's DEFAULTS and its processor's options: Focoos'
# common fields and what serving reads (threshold, top_k).
SHARED_CONFIG_KEYS = ("backbone_config", "num_classes", "resolution", "threshold", "top_k")


class NoWeightsWarning(UserWarning):
    """The model was built with random weights."""


_WARNED_UNREACHABLE: set[str] = set()  # weights URLs already reported in this process


@dataclass(frozen=True)
class Source:
    """What a strategy resolved: the model info, and a folder that relative weight paths start from."""

    info: ModelInfo
    weights_path: Path | None = None
    base_dir: Path | None = None
    remote_fallback: bool = False  # registry names: unreachable weights -> warn once, random weights


@dataclass(frozen=True)
class Strategy:
    name: str
    matches: Callable[[str, ModelInfo | None], bool]
    resolve: Callable[..., Source]  # (name, model_info, **the options it names)
    options: tuple[str, ...] = ()  # keyword arguments of ModelManager.get passed on (the hub's: hub, cache)


def _from_model_info(name: str, info: ModelInfo | None) -> Source:
    assert info is not None
    return Source(info.model_copy(update={"name": name}) if name else info)


def _from_local_dir(name: str, info: ModelInfo | None) -> Source:
    folder = Path(name).expanduser()
    if not (folder / INFO_FILE).is_file():
        raise ModelInfoError(f"model folder {folder} has no {INFO_FILE}")
    weights = folder / WEIGHTS_FILE
    return Source(ModelInfo.from_json(folder / INFO_FILE), weights if weights.is_file() else None, folder)


def _from_registry(name: str, info: ModelInfo | None) -> Source:
    return Source(ModelRegistry.get_model_info(name), None, ModelRegistry.registry_dir, remote_fallback=True)


def _is_run_name(name: str) -> bool:
    """A bare name of a folder in models_dir(), where training runs and hub downloads live."""
    return bool(name) and not Path(name).is_absolute() and (models_dir() / name).is_dir()


def _from_models_dir(name: str, info: ModelInfo | None) -> Source:
    return _from_local_dir(str(models_dir() / name), info)


def _from_hub(name: str, info: ModelInfo | None, hub: Any = None, cache: bool = True) -> Source:
    """hub://<ref>: info and weights cached in models_dir()/<ref> (policy in focoos.hub.model_cache)."""
    from focoos.hub.model_cache import fetch_hub_model  # requests loads only for hub references

    hub_info, weights, folder = fetch_hub_model(name, hub=hub, cache=cache)
    return Source(hub_info, weights, folder)


class ModelManager:
    """Load models by registry name, local folder, explicit ModelInfo or hub reference."""

    strategies: list[Strategy] = [
        Strategy("model_info", lambda name, info: info is not None, _from_model_info),
        Strategy("hub", lambda name, info: name.startswith("hub://"), _from_hub, options=("hub", "cache")),
        Strategy("local", lambda name, info: Path(name).expanduser().is_dir(), _from_local_dir),
        Strategy("registry", lambda name, info: ModelRegistry.exists(name), _from_registry),
        Strategy("models_dir", lambda name, info: _is_run_name(name), _from_models_dir),
    ]

    @classmethod
    def register_strategy(cls, strategy: Strategy, first: bool = True) -> None:
        cls.strategies = [s for s in cls.strategies if s.name != strategy.name]
        cls.strategies.insert(0 if first else len(cls.strategies), strategy)

    @classmethod
    def get(
        cls,
        name: str | os.PathLike[str],
        model_info: ModelInfo | None = None,
        config: Mapping[str, Any] | None = None,
        hub: Any = None,
        cache: bool = True,
        device: str = "auto",
        allow_random_weights: bool = False,
        **config_overrides: Any,
    ) -> FocoosModel:
        """Return a FocoosModel from a registry name, a folder (path or run name in models_dir()), hub:// or model_info.

        `config` replaces the model's config as a whole; keyword arguments then override single
        config values (and im_size, weights_uri). A key the family does not know raises ModelInfoError.
        A model whose weights cannot be loaded gets random ones with a NoWeightsWarning (enough to try it
        out); building it into a repository or exporting it raises RandomWeightsError unless
        allow_random_weights=True, here (no warning then) or at that call.
        """
        name = os.fspath(name)
        for strategy in cls.strategies:
            if strategy.matches(name, model_info):
                options = {"hub": hub, "cache": cache}
                source = strategy.resolve(name, model_info, **{k: options[k] for k in strategy.options})
                break
        else:
            raise ModelNotFoundError(
                f"'{name}' is neither a registry model, a folder with {INFO_FILE} (a path, or a run in "
                f"{models_dir()}), nor a hub:// reference; registry models: {', '.join(ModelRegistry.list_models())}"
            )
        info = _apply_overrides(source.info, config, config_overrides)
        return _build(info, source, device, allow_random_weights)


def valid_config_keys(info: ModelInfo) -> set[str]:
    """Config keys the model's family takes: its network DEFAULTS, its processor's options, the shared keys,
    and those its config holds."""
    spec = check_supported(info)
    defaults = getattr(spec.module("modelling"), "DEFAULTS", {})
    return set(defaults) | set(spec.postprocess_options(info)) | set(SHARED_CONFIG_KEYS) | set(info.config)


def _apply_overrides(info: ModelInfo, config: Mapping[str, Any] | None, overrides: dict[str, Any]) -> ModelInfo:
    if config is None and not overrides:
        return info
    values = {k: v for k, v in overrides.items() if k not in INFO_OVERRIDES}
    new_config = {**(dict(config) if config is not None else info.config), **values}
    valid = valid_config_keys(info)
    unknown = sorted(set(new_config) - valid)
    if unknown:
        raise ModelInfoError(
            f"unknown config key(s) for {info.name} ({info.model_family.value}): {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(valid))}, and {', '.join(INFO_OVERRIDES)}"
        )
    fields = {**info.model_dump(), "config": new_config}
    fields.update({k: v for k, v in overrides.items() if k in INFO_OVERRIDES})
    return ModelInfo.validated(f"overrides for {info.name}", **fields)


def _build(info: ModelInfo, source: Source, device: str, allow_random_weights: bool) -> FocoosModel:
    from focoos.focoos_model import FocoosModel

    check_supported(info)
    network = build_network(info)
    weights = source.weights_path
    random_weights = None  # why the network keeps its random weights, and how to load real ones
    unreachable = None  # a URL that could not be fetched: reported once per process
    if weights is None and info.weights_uri:
        try:
            weights = resolve_weights(info.weights_uri, info.weights_sha256, source.base_dir)
        except WeightsUnreachableError as exc:
            if not source.remote_fallback:
                raise
            unreachable = info.weights_uri
            random_weights = (
                f"pretrained weights at {info.weights_uri} are unreachable ({exc}); it holds RANDOM weights. "
                f"Download that file to {cached_weights_path(info.weights_uri)} (where FOCOOS_CACHE_DIR keeps it), "
                f"pass weights_uri='path/to/model_final.pth' to ModelManager.get, or retry online"
            )
    if weights is not None:
        load_weights(network, weights)
        if info.untrained:
            random_weights = (f"its {INFO_FILE} says its weights are RANDOM (status {RANDOM_WEIGHTS_STATUS}). "
                              f"Train it (model.train(args, data_train, data_val))")
    elif random_weights is None:
        random_weights = (
            "it has no pretrained weights: it holds RANDOM weights and its detections mean nothing. Train it "
            "(model.train(args, data_train, data_val)) or pass weights_uri='path/or/url/to/model_final.pth'"
        )
    if random_weights is not None and not allow_random_weights and _first_warning(unreachable):
        warnings.warn(f"{info.name}: {random_weights}.", NoWeightsWarning, stacklevel=3)
    return FocoosModel(network, info, device=device, random_weights=random_weights,
                       allow_random_weights=allow_random_weights)


def _first_warning(unreachable_url: str | None) -> bool:
    """An unreachable URL is reported once per process; any other cause of random weights every time."""
    if unreachable_url is None:
        return True
    first = unreachable_url not in _WARNED_UNREACHABLE
    _WARNED_UNREACHABLE.add(unreachable_url)
    return first


class ConfigManager:
    """A family's typed config from Focoos' JSON form, by family (Focoos' `ConfigManager.from_dict`).

    The config class is the ModelConfig subclass declared in the family's `config.py`.
    """

    @staticmethod
    def config_class(model_family: Any) -> type[ModelConfig]:
        """The family's config class (a ModelFamily or its name); UnsupportedFamilyError for an unknown family."""
        from focoos.errors import UnsupportedFamilyError
        from focoos.models import family_spec

        module = family_spec(model_family).module("config")
        found = [value for value in vars(module).values() if isinstance(value, type)
                 and issubclass(value, ModelConfig) and value.__module__ == module.__name__]
        if len(found) != 1:
            raise UnsupportedFamilyError(f"{module.__name__} must declare one ModelConfig subclass, found {found}")
        return found[0]

    @classmethod
    def from_dict(cls, model_family: Any, config_dict: Mapping[str, Any], **kwargs: Any) -> ModelConfig:
        """Parse `config_dict` (plus keyword overrides) into the family's config; ModelConfigError names the
        field that does not fit."""
        return cls.config_class(model_family).from_dict(config_dict, **kwargs)
