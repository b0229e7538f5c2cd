"""Typed config dataclasses that read and write Focoos' JSON form, refusing what does not fit.

A `DictClass` dataclass is also a mapping of its fields (`cfg["num_queries"]`, `cfg.get(...)`, `dict(cfg)`, and
checked `cfg["top_k"] = 10` / `cfg.update(...)`), as Focoos' configs are, so code written against the JSON dict
keeps working on the typed object.
`from_dict` raises ModelConfigError naming the field for an unknown key, a missing required field or a
value of the wrong type; `to_dict` gives back the JSON form (lists for tuples, nested dicts).
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar, Union

from focoos.errors import ModelConfigError

__all__ = ["DictClass", "ModelConfig"]

C = TypeVar("C", bound="DictClass")
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a dataclass (string annotations evaluated once per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_name(annotation: Any) -> str:
    """A readable name of an annotation for error messages: "one of 'a', 'b' or None", "list of int"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in args)
    if origin in (list, tuple) and args:
        return f"{origin.__name__} of " + ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _check(value: Any, annotation: Any, owner: str, path: str) -> Any:
    """`value` if it fits `annotation` (numbers widened to float, sequences to list/tuple, dicts parsed into
    nested configs); ModelConfigError naming `owner.path` otherwise."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)

    def fail(expected: str) -> ModelConfigError:
        return ModelConfigError(
            f"{owner}.{path}: expected {expected}, got {value!r} ({type(value).__name__})", field=path
        )

    if annotation is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, owner, path)
            except ModelConfigError as exc:
                if isinstance(arg, type) and issubclass(arg, DictClass) and isinstance(value, Mapping):
                    raise exc  # a nested config's own error says more than "expected X or None"
        raise fail(_type_name(annotation))
    if origin is Literal:
        if any(type(value) is type(choice) and value == choice for choice in args):
            return value
        raise fail(_type_name(annotation))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise fail("bool")
    if annotation is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise fail("int")
    if annotation is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise fail("float")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail("str")
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise fail(_type_name(annotation))
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise fail(f"{_type_name(annotation)} ({len(args)} items)")
            return tuple(_check(v, a, owner, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        items = [_check(v, item, owner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin or annotation) is tuple else items
    if isinstance(annotation, type) and issubclass(annotation, DictClass):
        if isinstance(value, annotation):
            return value
        if isinstance(value, Mapping):
            try:
                return annotation.from_dict(value, _path=f"{owner}.{path}")
            except ModelConfigError as exc:  # the field as seen from the outer config: backbone_config.size
                exc.field = path if exc.field is None else f"{path}.{exc.field}"
                raise
        raise fail(f"{annotation.__name__} or its dict form")
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise fail(annotation.__name__)
    return value


def _json(value: Any) -> Any:
    """Focoos' JSON form of a field value."""
    if isinstance(value, DictClass):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


class DictClass(Mapping[str, Any]):
    """Base of the typed configs: a dataclass whose fields also read as mapping items.

    Subclasses are `@dataclass`es; their values are checked against the annotations when built.
    """

    def __post_init__(self) -> None:
        owner = self._owner()
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, _check(getattr(self, f.name), hints[f.name], owner, f.name))

    @classmethod
    def _owner(cls) -> str:
        return cls.__name__

    # -- mapping view
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields in declaration order: the keys of the JSON form."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self.field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.field_names())

    def __len__(self) -> int:
        return len(self.field_names())

    def __setitem__(self, key: str, value: Any) -> None:
        """Set one field, checked like `from_dict` checks it."""
        if key not in self.field_names():
            raise self._unknown([key])
        setattr(self, key, _check(value, _hints(type(self))[key], self._owner(), key))

    def update(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Set several fields at once (Focoos' `config.update(kwargs)`); all are checked before any is set."""
        merged = {**(values or {}), **kwargs}
        unknown = [k for k in merged if k not in self.field_names()]
        if unknown:
            raise self._unknown(unknown)
        hints, owner = _hints(type(self)), self._owner()
        checked = {k: _check(v, hints[k], owner, k) for k, v in merged.items()}
        for key, value in checked.items():
            setattr(self, key, value)

    # -- JSON form
    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], _path: str | None = None, **overrides: Any) -> C:
        """Parse Focoos' JSON form (plus keyword overrides); ModelConfigError names the field that does not fit."""
        if not isinstance(data, Mapping):
            raise ModelConfigError(f"{_path or cls._owner()}: expected a dict, got {type(data).__name__}")
        values = {**data, **overrides}
        owner = _path or cls._owner()
        names = cls.field_names()
        unknown = [k for k in values if k not in names]
        if unknown:
            raise cls._unknown(unknown, owner)
        missing = [
            f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ModelConfigError(
                f"{owner}: missing required field(s) {', '.join(repr(m) for m in missing)}", field=missing[0]
            )
        hints = _hints(cls)
        checked = {k: _check(v, hints[k], owner, k) for k, v in values.items()}
        return cls(**checked)

    def to_dict(self) -> dict[str, Any]:
        """Focoos' JSON form: every field in declaration order, nested configs as dicts, tuples as lists."""
        return {name: _json(getattr(self, name)) for name in self.field_names()}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The JSON form of every field that has a default (the required ones are left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING:
                out[f.name] = _json(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = _json(f.default_factory())
        return out

    @classmethod
    def _unknown(cls, keys: list[str], owner: str | None = None) -> ModelConfigError:
        names = cls.field_names()
        hints = []
        for key in keys:
            close = difflib.get_close_matches(str(key), names, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return ModelConfigError(
            f"{owner or cls._owner()}: unknown field(s) {', '.join(hints)}; valid fields: {', '.join(names)}",
            field=str(keys[0]),
        )


@dataclasses.dataclass
class ModelConfig(DictClass):
    """Base of every family's config (Focoos' `focoos.ports.ModelConfig`)."""

    num_classes: int

    @classmethod
    def parse(cls: type[C], config: Mapping[str, Any], num_classes: int | None = None) -> C:
        """This family's typed config from a typed config or its JSON form; `num_classes`, when given,
        wins over the config's (the network builders take the class count from the model's classes)."""
        if isinstance(config, cls):
            if num_classes is None or config["num_classes"] == num_classes:
                return config
            return dataclasses.replace(config, num_classes=num_classes)  # type: ignore[type-var]
        if isinstance(config, DictClass):
            raise ModelConfigError(f"{cls.__name__} expected, got a {type(config).__name__}")
        return cls.from_dict(config, **({} if num_classes is None else {"num_classes": num_classes}))
