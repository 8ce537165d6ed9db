"""A search space: the searched dimensions by name plus the fixed values, and its unit cube.

``Space(params, fixed)`` validates everything before any trial runs: each name must be one of the
engine's knobs (:data:`engine.search.knobs.SEARCHABLE`), each dimension must stay inside its
knob's domain, each fixed value must be valid, no name may be both searched and fixed, and if
``decay`` can be ``exponential`` or ``step`` every possible ``decay_rate`` must be in (0, 1].
Every error is a :class:`SpaceError` whose message starts with the parameter's name.

A point of the space is a unit vector ``u`` of shape ``(d,)``, one coordinate per searched
dimension in :attr:`Space.dimension_names` order; :meth:`Space.params_from_unit` turns it into a
params dict (fixed values merged in) and :meth:`Space.unit_from_params` goes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.search.dimensions import Choice, Dimension, dimension_from_dict
from engine.search.knobs import KNOBS, check_decay_rate, knob
from engine.search.scales import AxisInfo, SpaceError


class Space:
    """Searched ``params`` (name -> dimension, order kept) and ``fixed`` values (name -> value)."""

    def __init__(self, params: Mapping[str, Dimension], fixed: Mapping[str, Any] | None = None):
        if not isinstance(params, Mapping):
            raise SpaceError(f"params must be a dict of name -> dimension, got {params!r}")
        fixed = {} if fixed is None else fixed
        if not isinstance(fixed, Mapping):
            raise SpaceError(f"fixed must be a dict of name -> value, got {fixed!r}")
        for name, dim in params.items():
            if not isinstance(dim, Dimension):
                knob(name)
                raise SpaceError(f"{name}: expected Float, Int or Choice, got {dim!r}")
            knob(name).check_dimension(dim)  # messages start with the name
        for name, value in fixed.items():
            if name in params:
                raise SpaceError(f"{name}: is both searched and fixed; keep one of the two")
            knob(name).check_value(value)
        self.params: dict[str, Dimension] = dict(params)
        self.fixed: dict[str, Any] = dict(fixed)
        check_decay_rate(self._extremes("decay"), self._extremes("decay_rate"))

    def _extremes(self, name: str) -> list[tuple[str, Any]]:
        """The values ``name`` can take, labelled for messages: the options of a Choice, the
        bounds of a Float/Int, the fixed value, or the knob's default."""
        if name in self.params:
            dim = self.params[name]
            if isinstance(dim, Choice):
                return [("option", option) for option in dim.options]
            return [("low", dim.low), ("high", dim.high)]
        if name in self.fixed:
            return [("value", self.fixed[name])]
        return [("default", KNOBS[name].default)]

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """Names of the searched dimensions, in unit-vector order."""
        return tuple(self.params)

    @property
    def n_dims(self) -> int:
        return len(self.params)

    def axis(self, name: str) -> AxisInfo:
        """Chart axis for the searched dimension ``name``."""
        return self.params[name].axis

    def params_from_unit(self, u: np.ndarray) -> dict[str, Any]:
        """Unit vector ``u`` of shape ``(d,)`` -> params dict: the searched values (plain Python
        scalars, JSON ready), then the fixed values."""
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (self.n_dims,):
            raise SpaceError(f"expected a unit vector of shape ({self.n_dims},), got {u.shape}")
        if not np.all(np.isfinite(u)):
            raise SpaceError(f"unit vector must be finite, got {u.tolist()}")
        params = {name: dim.from_unit(float(ui)) for (name, dim), ui in zip(self.params.items(), u)}
        params.update(self.fixed)
        return params

    sample_to_params = params_from_unit  # the name used in docs/CONTRACTS.md

    def unit_from_params(self, params: Mapping[str, Any]) -> np.ndarray:
        """Params dict -> unit vector of shape ``(d,)``; keys other than the searched names are
        ignored, a missing searched name or an out-of-range value is a SpaceError."""
        u = np.empty(self.n_dims, dtype=np.float64)
        for i, (name, dim) in enumerate(self.params.items()):
            if name not in params:
                raise SpaceError(f"{name}: missing from params {sorted(params)}")
            try:
                u[i] = dim.to_unit(params[name])
            except SpaceError as err:
                raise SpaceError(f"{name}: {err}") from err
        return u

    def to_dict(self) -> dict:
        return {
            "params": {name: dim.to_dict() for name, dim in self.params.items()},
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Space:
        if not isinstance(d, Mapping):
            raise SpaceError(f"a space must be a dict, got {d!r}")
        unknown = sorted(set(d) - {"params", "fixed"})
        if unknown:
            raise SpaceError(f"unknown keys {unknown} in a space; valid keys: params, fixed")
        raw = d.get("params", {})
        if not isinstance(raw, Mapping):
            raise SpaceError(f"params must be a dict of name -> dimension, got {raw!r}")
        params = {}
        for name, dim in raw.items():
            knob(name)  # an unknown name is reported before its dimension
            params[name] = dimension_from_dict(dim, name)
        return cls(params, d.get("fixed", {}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self.dimension_names == other.dimension_names

    def __repr__(self) -> str:
        return f"Space(params={self.params!r}, fixed={self.fixed!r})"
