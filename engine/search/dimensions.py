"""Search-space dimensions: ``Float``, ``Int`` and ``Choice``, each a map to and from ``[0, 1]``.

Every dimension validates itself when built (a :class:`SpaceError` names the values and what
would be valid) and offers the same small interface, so samplers work in the unit cube and never
branch on scale or type:

- ``to_unit(value) -> float`` in ``[0, 1]`` and ``from_unit(u) -> value`` (``u`` is clipped);
- ``grid_units(n, ends=False)``: distinct unit points for an ``n``-point grid axis (the centres
  of ``n`` equal cells by default, so 2 points on a learning rate 1e-5..1 are 1.8e-4 and 5.6e-2;
  ``ends=True`` spaces them from one end to the other);
- ``value_range(u_low, u_high)``: what a unit interval covers, in values (for zoom boxes);
- ``axis``: an :class:`~engine.search.scales.AxisInfo` for charts;
- ``to_dict()`` / :func:`dimension_from_dict` for a JSON round trip.

``Int`` maps the unit interval onto ``[low - 0.5, high + 0.5]`` on its scale and rounds half up,
so every integer owns one bin: equal bins on ``linear``, log-width bins on ``log``; ``u = 0``
gives ``low`` and ``u = 1`` gives ``high``, and ``to_unit`` returns the centre of the value's bin.
``Choice`` splits the unit interval into equal bins, one per option.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from engine.search import scales
from engine.search.scales import AxisInfo, SpaceError, check_scale


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise SpaceError(f"{field} must be a finite number, got {field}={value!r}")
    return float(value)


def _check_bounds(low: Any, high: Any) -> None:
    if _number(low, "low") > _number(high, "high"):
        raise SpaceError(f"low must be <= high, got low={low!r}, high={high!r}")


def _grid(n: int, ends: bool = False) -> np.ndarray:
    """``n`` unit points: the centres of ``n`` equal cells, or (``ends``) evenly from 0 to 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpaceError(f"points_per_axis must be an integer >= 1, got {n!r}")
    if n == 1:
        return np.array([0.5])
    return np.linspace(0.0, 1.0, n) if ends else (np.arange(n) + 0.5) / n


class Dimension(ABC):
    """One searchable axis: a map between values and the unit interval."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """The unit coordinate in ``[0, 1]`` of ``value``; SpaceError if it is not in the range."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at unit coordinate ``u`` (clipped to ``[0, 1]``), a plain Python scalar."""

    @abstractmethod
    def to_dict(self) -> dict:
        """A JSON-ready dict that :func:`dimension_from_dict` turns back into this dimension."""

    @property
    @abstractmethod
    def axis(self) -> AxisInfo:
        """How charts draw this dimension."""

    def grid_units(self, n: int, ends: bool = False) -> np.ndarray:
        """Distinct unit points of an ``n``-point grid axis (cell centres, or both ends included
        with ``ends``; points that map to a value already taken are dropped). Shape ``(m,)``,
        ``m <= n``."""
        seen: list = []
        kept = []
        for u in _grid(n, ends):
            value = self.from_unit(float(u))
            if value not in seen:
                seen.append(value)
                kept.append(u)
        return np.array(kept, dtype=np.float64)

    def value_range(self, u_low: float, u_high: float) -> tuple:
        """The values covered by the unit interval ``[u_low, u_high]``: ``(low, high)``."""
        return (self.from_unit(u_low), self.from_unit(u_high))


@dataclass(frozen=True)
class Float(Dimension):
    """A real number in ``[low, high]`` on ``scale`` (``linear``, ``log`` or ``one_minus_log``)."""

    low: float
    high: float
    scale: str = "linear"

    def __post_init__(self) -> None:
        check_scale(self.scale)
        _check_bounds(self.low, self.high)
        low, high = float(self.low), float(self.high)
        if self.scale == "log" and low <= 0:
            raise SpaceError(f"log scale needs low > 0, got low={low!r}, high={high!r}")
        if self.scale == "one_minus_log" and (low < 0 or high >= 1):
            raise SpaceError(
                f"one_minus_log scale needs 0 <= low <= high < 1, got low={low!r}, high={high!r}"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def to_unit(self, value: Any) -> float:
        x = _number(value, "value")
        slack = 1e-9 * max(abs(self.low), abs(self.high))  # rounding from a JSON round trip
        if not self.low - slack <= x <= self.high + slack:
            raise SpaceError(f"value {x!r} is outside [{self.low!r}, {self.high!r}]")
        x = min(max(x, self.low), self.high)
        return float(scales.to_unit(x, self.low, self.high, self.scale))

    def from_unit(self, u: float) -> float:
        return float(scales.from_unit(u, self.low, self.high, self.scale))

    def grid_units(self, n: int, ends: bool = False) -> np.ndarray:
        return np.array([0.0]) if self.low == self.high else _grid(n, ends)

    @property
    def axis(self) -> AxisInfo:
        return scales.axis_for_scale(self.scale)

    def to_dict(self) -> dict:
        return {"type": "float", "low": self.low, "high": self.high, "scale": self.scale}


@dataclass(frozen=True)
class Int(Dimension):
    """An integer in ``[low, high]`` on ``scale`` (``linear`` or ``log``).

    The bounds must be whole numbers (``8`` or ``8.0``): ``Int(8.5, 64)`` is refused, since a
    user who typed 8.5 did not mean 9.
    """

    low: int
    high: int
    scale: str = "linear"

    def __post_init__(self) -> None:
        check_scale(self.scale)
        _check_bounds(self.low, self.high)
        low, high = float(self.low), float(self.high)
        if self.scale == "one_minus_log":
            raise SpaceError("one_minus_log scale is for Float values in [0, 1), not for Int")
        for field, value in (("low", low), ("high", high)):
            if not value.is_integer():
                raise SpaceError(
                    f"an Int's {field} must be a whole number, got {field}={value!r} "
                    f"(use {math.floor(value)} or {math.ceil(value)}, or a Float)"
                )
        int_low, int_high = int(low), int(high)
        if self.scale == "log" and int_low < 1:
            raise SpaceError(f"log scale needs low >= 1 for an Int, got low={self.low!r}")
        object.__setattr__(self, "low", int_low)
        object.__setattr__(self, "high", int_high)

    def _edges(self) -> tuple[float, float]:
        return self.low - 0.5, self.high + 0.5

    def to_unit(self, value: Any) -> float:
        x = _number(value, "value")
        if x != round(x) or not self.low <= x <= self.high:
            raise SpaceError(f"value {value!r} is not an integer in [{self.low}, {self.high}]")
        return float(scales.to_unit(x, *self._edges(), self.scale))

    def from_unit(self, u: float) -> int:
        x = float(scales.from_unit(u, *self._edges(), self.scale))
        return min(max(math.floor(x + 0.5), self.low), self.high)

    def grid_units(self, n: int, ends: bool = False) -> np.ndarray:
        us = _grid(n, ends)
        x = scales.from_unit(us, *self._edges(), self.scale)
        values = np.clip(np.floor(x + 0.5), self.low, self.high)
        _, first = np.unique(values, return_index=True)
        return us[np.sort(first)]

    @property
    def axis(self) -> AxisInfo:
        return scales.axis_for_scale(self.scale)

    def to_dict(self) -> dict:
        return {"type": "int", "low": self.low, "high": self.high, "scale": self.scale}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: ``True`` is not ``1``, but ``64`` is ``64.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Real) and isinstance(b, Real):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Choice(Dimension):
    """One of ``options`` (JSON scalars: str, int, float, bool); equal unit bins per option."""

    options: tuple

    def __post_init__(self) -> None:
        if isinstance(self.options, str | bytes) or not isinstance(self.options, Sequence):
            raise SpaceError(f"options must be a list, got options={self.options!r}")
        options = tuple(self.options)
        if not options:
            raise SpaceError("a Choice needs at least one option, got options=[]")
        for option in options:
            ok = isinstance(option, str | bool) or (
                isinstance(option, Real) and math.isfinite(option)
            )
            if not ok:
                raise SpaceError(
                    f"options must be str, int, float or bool, got option {option!r} "
                    f"in options={list(options)!r}"
                )
        for i, option in enumerate(options):
            if any(_same(option, other) for other in options[:i]):
                raise SpaceError(f"duplicate option {option!r} in options={list(options)!r}")
        object.__setattr__(self, "options", options)

    def index(self, value: Any) -> int:
        """Position of ``value`` among the options; SpaceError if it is not one of them."""
        for i, option in enumerate(self.options):
            if _same(option, value):
                return i
        valid = ", ".join(repr(o) for o in self.options)
        raise SpaceError(f"value {value!r} is not one of the options: {valid}")

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.options)

    def from_unit(self, u: float) -> Any:
        k = len(self.options)
        u = min(max(float(u), 0.0), 1.0)
        return self.options[min(int(u * k), k - 1)]

    def grid_units(self, n: int, ends: bool = False) -> np.ndarray:
        """Every option's bin centre, whatever ``n`` is: a grid enumerates the options."""
        _grid(n, ends)
        k = len(self.options)
        return (np.arange(k) + 0.5) / k

    def value_range(self, u_low: float, u_high: float) -> tuple:
        """The options a sample of ``[u_low, u_high]`` can take, in order: those whose bins
        overlap it (a bin that only touches ``u_high`` is left out: ``(0.0, 0.5)`` on two
        options samples only the first), or the one option at a zero-width interval."""
        k = len(self.options)
        first = min(int(max(u_low, 0.0) * k), k - 1)
        last = min(math.ceil(min(u_high, 1.0) * k) - 1, k - 1)
        return self.options[first : max(first, last) + 1]

    @property
    def axis(self) -> AxisInfo:
        return AxisInfo("category", categories=tuple(str(o) for o in self.options))

    def to_dict(self) -> dict:
        return {"type": "choice", "options": list(self.options)}


_TYPES: dict[str, tuple[type[Dimension], tuple[str, ...], tuple[str, ...]]] = {
    "float": (Float, ("low", "high"), ("scale",)),
    "int": (Int, ("low", "high"), ("scale",)),
    "choice": (Choice, ("options",), ()),
}


def dimension_from_dict(d: dict, name: str = "") -> Dimension:
    """Build a dimension from :meth:`Dimension.to_dict` output; errors are prefixed by ``name``."""
    prefix = f"{name}: " if name else ""
    try:
        if not isinstance(d, dict):
            raise SpaceError(f"a dimension must be a dict, got {d!r}")
        kind = d.get("type")
        if kind not in _TYPES:
            raise SpaceError(f"unknown dimension type {kind!r}; valid types: float, int, choice")
        cls, required, optional = _TYPES[kind]
        fields = required + optional
        unknown = sorted(set(d) - set(fields) - {"type"})
        if unknown:
            raise SpaceError(
                f"unknown keys {unknown} for type {kind!r}; valid keys: {list(fields)}"
            )
        missing = [k for k in required if k not in d]
        if missing:
            raise SpaceError(f"missing keys {missing} for type {kind!r}")
        return cls(**{k: d[k] for k in fields if k in d})
    except SpaceError as err:
        raise SpaceError(f"{prefix}{err}") from err
