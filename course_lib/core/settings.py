"""Settings declared once per assignment: a frozen dataclass whose fields are the knobs, checked on creation.

Each assignment's ``config`` module declares one :class:`Settings` subclass; every field is a
:func:`knob` with its default, its type, its allowed values or range, and a one-line description. A
profile is one instance of that class that states only what differs from the defaults, so creating a
profile (or overriding one) checks every value::

    @dataclass(frozen=True)
    class CNNSettings(Settings):
        epochs: int = knob(default=30, min=1, doc="training epochs")
        lr: float = knob(default=0.4, min=0.0, min_inclusive=False, doc="peak learning rate")
        augment: bool = knob(default=True, doc="random crop + horizontal flip")

    FULL = CNNSettings()                          # the defaults
    SMOKE = CNNSettings(epochs=2, augment=False)  # what differs from them
    SMOKE.override(epochs=5)          # a new, checked instance
    SMOKE.override(epochs=...)        # ``...`` (not set) keeps the profile's value
    SMOKE.override(epochs=0)          # ValueError: epochs=0 is not valid; it must be >= 1

``None`` is a value like any other: it means what the knob's doc says (``None: all``, ``None: no
clipping``...), and a knob whose type does not include ``None`` refuses it. Lists (as papermill passes
them) become tuples for ``tuple[...]`` fields and ints are accepted for ``float`` fields; NaN and
infinities are refused for every number; anything else of the wrong type is refused with the field's
name.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S", bound="Settings")

UNSET: Any = Ellipsis
"""A parameter that is not set (``...`` in a notebook's parameters cell): the profile's value stays."""


def check_choice(name: str, value: T, choices: Iterable[Any]) -> T:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` naming both."""
    valid = list(choices)
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {valid}")
    return value


def knob(
    *,
    default: Any,
    doc: str,
    choices: Iterable[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> Any:
    """A settings field: its ``default``, ``choices`` (allowed values) or ``min``/``max`` (numeric range,
    each bound inclusive unless said; also checked for each element of a tuple), and ``doc``, shown in
    errors and in :meth:`Settings.describe` (say there what ``None`` means when the knob takes it)."""
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
            "min_inclusive": min_inclusive, "max_inclusive": max_inclusive}
    if isinstance(default, dict | list | set):  # a mutable default: each instance gets its own copy
        return dataclasses.field(default_factory=functools.partial(copy.deepcopy, default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` converted to the annotated type ``tp`` where that is lossless, else ``TypeError``."""
    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, value, option)
            except TypeError:
                continue
        raise TypeError(f"{name}={value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{name}={value!r} has the wrong type; expected a list or tuple")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(args) != len(value):
            raise TypeError(f"{name}={value!r} must hold {len(args)} values")
        return tuple(_coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}={value!r} has the wrong type; expected a dict")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name}={value!r} has the wrong type; expected a number")
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r} is not valid; give a finite number (NaN and infinities are "
                             "refused)")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}={value!r} has the wrong type; expected an int")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name}={value!r} has the wrong type; expected True or False")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{name}={value!r} has the wrong type; expected a string")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TypeError(f"{name}={value!r} has the wrong type; expected {_type_name(tp)}")
    return value


def _check_range(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    lo, hi, inclusive = meta["min"], meta["max"], meta["min_inclusive"]
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if lo is not None and (v < lo or (v == lo and not inclusive)):
            bound = f">= {lo}" if inclusive else f"> {lo}"
            raise ValueError(f"{name}={value!r} is not valid; it must be {bound} ({meta['doc']})")
        if hi is not None and (v > hi or (v == hi and not meta["max_inclusive"])):
            bound = f"<= {hi}" if meta["max_inclusive"] else f"< {hi}"
            raise ValueError(f"{name}={value!r} is not valid; it must be {bound} ({meta['doc']})")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every assignment's settings: fields are :func:`knob` s, checked in ``__post_init__``."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            meta = f.metadata
            try:
                value = _coerce(f.name, getattr(self, f.name), hints[f.name])
            except TypeError as err:  # say what the knob takes: its choices, or its doc
                valid = f"choose one of {list(meta['choices'])}" if meta.get("choices") else meta.get("doc")
                raise TypeError(f"{err} ({valid})" if valid else str(err)) from None
            if meta.get("choices") is not None and value is not None:
                for v in value if isinstance(value, tuple) else (value,):
                    check_choice(f.name, v, meta["choices"])
            if meta:
                _check_range(f.name, value, meta)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Checks across fields (override in a subclass); raise ``ValueError`` naming the fields."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The knob names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def override(self: S, **values: Any) -> S:
        """A checked copy with ``values`` replaced; a value ``...`` (:data:`UNSET`, a notebook parameter
        that is not set) keeps this instance's value, and ``None`` is a value like any other (what the
        knob's doc says it means). Unknown names are refused."""
        unknown = sorted(set(values) - set(self.names()))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; valid settings: {list(self.names())}")
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not UNSET})

    @classmethod
    def defaults(cls: type[S]) -> S:
        """The settings with every knob at its declared default."""
        return cls()

    def changes(self) -> dict[str, Any]:
        """The knobs whose value differs from the declared default, in declaration order."""
        default = self.defaults()
        return {name: value for name, value in self.to_dict().items() if value != getattr(default, name)}

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (tuples stay tuples; JSON writers turn them into lists)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(name, type, description)`` of every knob, for documentation and error messages."""
        hints = typing.get_type_hints(cls)
        return [(f.name, _type_name(hints[f.name]), f.metadata.get("doc", ""))
                for f in dataclasses.fields(cls)]
