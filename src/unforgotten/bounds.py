"""Every number in a config field or a method argument is checked here, one way, one message.

A numeric dataclass field (``int``, ``float``, or either ``| None``) is always checked for its
type (an ``int`` field takes integers only, a ``float`` field any finite number; ``bool`` is never
a number) and, when declared with :func:`bounded`, for its range::

    lr: float = bounded(1e-4, gt=0)
    k: int = bounded(32, ge=1)
    top_p: float = bounded(0.95, gt=0, le=1)

A ``bool`` field must be true or false, and a string declared with :func:`one_of` one of its
choices (``storage: str = one_of("topk", ("topk", "exact"))``), in the same message shape.

:func:`check_fields` walks a dataclass (and the dataclasses inside it) and raises one
:class:`~unforgotten.errors.ConfigError` shaped like ``train.lr must be a finite number > 0
(got inf)``: the field's dotted name, what it must be, and the value it got. Config loading calls
it with no prefix (``train.lr``, ``align.lora.r``); every method calls it from ``__post_init__``
with its registry name (``der.alpha``), so ``--set`` and direct construction give the same message.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError

BOUNDS_KEY = "unforgotten.bounds"
CHOICES_KEY = "unforgotten.choices"


@dataclass(frozen=True)
class Bounds:
    """A range: each of ``gt`` / ``ge`` (lower) and ``lt`` / ``le`` (upper) is optional."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def contains(self, v: float) -> bool:
        return not (
            (self.gt is not None and not v > self.gt)
            or (self.ge is not None and not v >= self.ge)
            or (self.lt is not None and not v < self.lt)
            or (self.le is not None and not v <= self.le)
        )

    def describe(self) -> str:
        """'> 0', 'in [0, 1)', '' (no range)."""
        lo, hi = (self.gt, "(") if self.gt is not None else (self.ge, "["), (self.lt, ")") if self.lt is not None else (self.le, "]")
        if lo[0] is not None and hi[0] is not None:
            return f"in {lo[1]}{_num(lo[0])}, {_num(hi[0])}{hi[1]}"
        if lo[0] is not None:
            return f"{'>' if lo[1] == '(' else '>='} {_num(lo[0])}"
        if hi[0] is not None:
            return f"{'<' if hi[1] == ')' else '<='} {_num(hi[0])}"
        return ""


NO_BOUNDS = Bounds()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bounded(default: Any = dataclasses.MISSING, *, gt=None, ge=None, lt=None, le=None, **field_kwargs) -> Any:
    """A dataclass field whose value must lie in the given range (see the module docstring)."""
    meta = {**field_kwargs.pop("metadata", {}), BOUNDS_KEY: Bounds(gt=gt, ge=ge, lt=lt, le=le)}
    return dataclasses.field(default=default, metadata=meta, **field_kwargs)


def one_of(default: Any, choices: typing.Iterable[str], **field_kwargs) -> Any:
    """A string field whose value must be one of ``choices``."""
    meta = {**field_kwargs.pop("metadata", {}), CHOICES_KEY: tuple(choices)}
    return dataclasses.field(default=default, metadata=meta, **field_kwargs)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``T | None``, ``(tp, False)`` otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def numeric_kind(tp: Any) -> tuple[type, bool] | None:
    """``(int or float, optional)`` for a numeric type hint, else None."""
    tp, optional = _unwrap_optional(tp)
    return (tp, optional) if tp in (int, float) else None


def describe(kind: type, bounds: Bounds = NO_BOUNDS, optional: bool = False) -> str:
    what = "an integer" if kind is int else "a finite number"
    rng = bounds.describe()
    return f"{what}{' ' + rng if rng else ''}{' or null' if optional else ''}"


def check_number(where: str, value: Any, kind: type = float, bounds: Bounds = NO_BOUNDS, optional: bool = False) -> Any:
    """Return ``value`` (an int given for a float becomes a float) or raise the one message shape."""
    if value is None and optional:
        return None
    ok = not isinstance(value, bool) and (
        isinstance(value, int) if kind is int else isinstance(value, (int, float)) and math.isfinite(value)
    )
    if ok and bounds.contains(value):
        return float(value) if kind is float else value
    raise ConfigError(f"{where} must be {describe(kind, bounds, optional)} (got {value!r})")


def check_choice(where: str, value: Any, choices: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value in choices:
        return value
    raise ConfigError(f"{where} must be one of {', '.join(map(repr, choices))} (got {value!r})")


def check_bool(where: str, value: Any, optional: bool = False) -> bool | None:
    if isinstance(value, bool) or (optional and value is None):
        return value
    raise ConfigError(f"{where} must be true{', false or null' if optional else ' or false'} (got {value!r})")


Check = Callable[[str, Any], Any]  # (dotted field name, value) -> the value to keep, or ConfigError


@functools.cache
def _checks(cls: type) -> tuple[tuple[str, Check], ...]:
    """``(field name, check)`` for each field of ``cls`` this module checks: every number, every
    bool, and every string declared with :func:`one_of`."""
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, Check]] = []
    for f in dataclasses.fields(cls):
        kind = numeric_kind(hints.get(f.name))
        if kind is not None:
            bounds = f.metadata.get(BOUNDS_KEY, NO_BOUNDS)
            out.append((f.name, functools.partial(check_number, kind=kind[0], bounds=bounds, optional=kind[1])))
        elif BOUNDS_KEY in f.metadata:  # a range on a field that is not a number is a declaration bug
            raise TypeError(f"{cls.__name__}.{f.name}: bounded() needs an int or float field")
        elif f.metadata.get(CHOICES_KEY):
            out.append((f.name, functools.partial(check_choice, choices=f.metadata[CHOICES_KEY])))
        elif (inner := _unwrap_optional(hints.get(f.name)))[0] is bool:
            out.append((f.name, functools.partial(check_bool, optional=inner[1])))
    return tuple(out)


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every number, bool and declared choice of dataclass ``obj`` and of the dataclasses in
    its fields; a float field given an int is stored as a float."""
    for name, check in _checks(type(obj)):
        value = getattr(obj, name)
        new = check(f"{prefix}{name}", value)
        if new is not value:
            object.__setattr__(obj, name, new)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_fields(value, f"{prefix}{f.name}.")
