"""Samplers: where to try next, as points of a space's unit cube.

One contract, stated once. A sampler is a small object holding only its settings, with

- ``sample_unit(space, n, seed) -> np.ndarray`` of shape ``(n, d)``, ``d = space.n_dims``, every
  entry in ``[0, 1]``; the same ``(space, n, seed)`` always gives the same array;
- ``sample(space, n, seed) -> list[dict]``: the same points as params dicts (fixed values merged);
- ``validate(space)``: raise :class:`SpaceError` if the sampler cannot run on ``space`` (called
  by ``sample_unit`` too, so a study can check before anything runs);
- ``to_dict()`` and :func:`sampler_from_dict` for a JSON round trip.

Samplers see only unit coordinates, never scales; the dimensions map them to values. Except for
Latin hypercube sampling, the first ``m`` rows for ``n > m`` equal the rows for ``n = m``, so a
study may draw more points later with the same seed and skip the ones it has.

- :class:`GridSampler`: ``points_per_axis`` evenly spaced unit points per axis (both ends),
  options of a ``Choice`` enumerated, repeated ``Int`` values dropped; exhaustive, no duplicates,
  in a seeded random order (``shuffle=False`` keeps lexicographic order).
- :class:`RandomSampler`: uniform in the unit cube.
- :class:`QuasiRandomSampler`: scrambled Sobol or Latin hypercube from ``scipy.stats.qmc``.
- :class:`CoarseToFineSampler`: uniform inside a zoom :class:`Box` around a parent study's best.
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from engine.search.scales import SpaceError
from engine.search.space import Space


def _count(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpaceError(f"{field} must be an integer >= {minimum}, got {field}={value!r}")
    return int(value)


class Sampler(ABC):
    """Base class: subclasses set ``kind`` and implement ``_sample_unit`` and ``to_dict``."""

    kind: ClassVar[str]

    def validate(self, space: Space) -> None:
        """Raise SpaceError if this sampler cannot run on ``space`` (any space, by default)."""
        return None

    def default_n(self, space: Space) -> int | None:
        """How many points ``n=None`` means (``None``: ``n`` is required)."""
        return None

    def sample_unit(self, space: Space, n: int | None = None, seed: int = 0) -> np.ndarray:
        """``n`` points of the unit cube, shape ``(n, space.n_dims)``, deterministic for a seed."""
        if n is None:
            n = self.default_n(space)
            if n is None:
                raise SpaceError(f"n is required for the {self.kind} sampler")
        n = _count(n, "n", 0)
        seed = _count(seed, "seed", 0)
        self.validate(space)
        u = np.asarray(self._sample_unit(space, n, np.random.default_rng(seed)), np.float64)
        assert u.shape == (n, space.n_dims), (u.shape, n, space.n_dims)
        return np.clip(u, 0.0, 1.0)

    def sample(self, space: Space, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` params dicts (fixed values merged), deterministic for a seed."""
        return [space.params_from_unit(u) for u in self.sample_unit(space, n, seed)]

    @abstractmethod
    def _sample_unit(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, d)`` unit points; ``rng`` is seeded by ``sample_unit``."""

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-ready settings including ``"kind"``."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sampler):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        settings = {k: v for k, v in self.to_dict().items() if k != "kind"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in settings.items())})"


class GridSampler(Sampler):
    """Every combination of ``points_per_axis`` points per axis; at most ``max_grid_size``."""

    kind = "grid"

    def __init__(self, points_per_axis: int = 5, max_grid_size: int = 10_000, shuffle: bool = True):
        self.points_per_axis = _count(points_per_axis, "points_per_axis", 1)
        self.max_grid_size = _count(max_grid_size, "max_grid_size", 1)
        self.shuffle = bool(shuffle)

    def axes(self, space: Space) -> list[np.ndarray]:
        """The unit points of each axis, in dimension order."""
        return [dim.grid_units(self.points_per_axis) for dim in space.params.values()]

    def grid_size(self, space: Space) -> int:
        """Number of grid points: the product of the axes' point counts."""
        return math.prod(len(axis) for axis in self.axes(space))

    def default_n(self, space: Space) -> int:
        return self.grid_size(space)

    def validate(self, space: Space) -> None:
        axes = self.axes(space)
        size = math.prod(len(axis) for axis in axes)
        if size > self.max_grid_size:
            shape = " x ".join(f"{len(a)} {name}" for a, name in zip(axes, space.dimension_names))
            raise SpaceError(
                f"the grid has {size:,} points ({shape}), more than max_grid_size="
                f"{self.max_grid_size:,}; lower points_per_axis or search fewer dimensions"
            )

    def _sample_unit(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        axes = self.axes(space)
        size = math.prod(len(axis) for axis in axes)
        if n > size:
            raise SpaceError(f"the grid has only {size} points, asked for n={n}")
        if axes:
            mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(size, len(axes))
        else:
            mesh = np.zeros((1, 0))
        order = rng.permutation(size) if self.shuffle else np.arange(size)
        return mesh[order[:n]]

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "points_per_axis": self.points_per_axis,
            "max_grid_size": self.max_grid_size,
            "shuffle": self.shuffle,
        }


class RandomSampler(Sampler):
    """Independent uniform points of the unit cube (log-uniform on a log axis, and so on)."""

    kind = "random"

    def _sample_unit(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random((n, space.n_dims))

    def to_dict(self) -> dict:
        return {"kind": self.kind}


QMC_METHODS = ("sobol", "lhs")


class QuasiRandomSampler(Sampler):
    """Scrambled, seeded low-discrepancy points: ``"sobol"`` or ``"lhs"`` (Latin hypercube)."""

    kind = "quasi_random"

    def __init__(self, method: str = "sobol"):
        if method not in QMC_METHODS:
            raise SpaceError(f"unknown method {method!r}; valid methods: {', '.join(QMC_METHODS)}")
        self.method = method

    def _sample_unit(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        d = space.n_dims
        if d == 0 or n == 0:
            return np.zeros((n, d))
        from scipy.stats import qmc  # ~0.4 s to import: only a quasi-random study pays it

        if self.method == "lhs":
            return qmc.LatinHypercube(d, rng=rng).random(n)
        with warnings.catch_warnings():  # n need not be a power of two for our use
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return qmc.Sobol(d, scramble=True, rng=rng).random(n)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "method": self.method}


@dataclass(frozen=True)
class Box:
    """A zoom box: per searched dimension, ``unit[name] = (low, high)`` in unit space and
    ``values[name]``: ``(low, high)`` values for Float/Int, the covered options for a Choice."""

    unit: dict[str, tuple[float, float]]
    values: dict[str, tuple]

    @property
    def low(self) -> np.ndarray:
        return np.array([lo for lo, _ in self.unit.values()], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        return np.array([hi for _, hi in self.unit.values()], dtype=np.float64)

    @property
    def volume(self) -> float:
        """Fraction of the unit cube inside the box (the parent's volume is 1)."""
        return float(np.prod(self.high - self.low))

    def contains(self, u: np.ndarray) -> bool:
        u = np.asarray(u, dtype=np.float64)
        return bool(np.all((self.low <= u) & (u <= self.high)))

    def to_dict(self) -> dict:
        return {
            "unit": {name: list(pair) for name, pair in self.unit.items()},
            "values": {name: list(v) for name, v in self.values.items()},
        }


class CoarseToFineSampler(Sampler):
    """Uniform points inside a box around the ``top_k`` best trials of a parent study.

    ``parent_trials``: ``(params, score)`` pairs (or ``{"params", "score"}`` dicts); trials with
    a missing or non-finite score are ignored. ``maximize=True``: a higher score (validation
    accuracy) is better; use ``False`` for a loss. The box, in unit space, is the bounding box
    of the top-k, widened on each axis to at least ``shrink`` of the parent's range (centred on
    the top-k, slid inward to stay inside ``[0, 1]``): it always contains the top-k.
    """

    kind = "coarse_to_fine"

    def __init__(
        self,
        parent_trials: Sequence,
        top_k: int = 5,
        shrink: float = 0.5,
        maximize: bool = True,
    ):
        self.top_k = _count(top_k, "top_k", 1)
        if isinstance(shrink, bool) or not isinstance(shrink, Real) or not 0 < shrink <= 1:
            raise SpaceError(f"shrink must be in (0, 1], got shrink={shrink!r}")
        self.shrink = float(shrink)
        self.maximize = bool(maximize)
        trials = []
        for trial in parent_trials:
            if isinstance(trial, Mapping):
                params, score = trial.get("params"), trial.get("score")
            else:
                params, score = trial
            if not isinstance(params, Mapping):
                raise SpaceError(f"a parent trial's params must be a dict, got {params!r}")
            ok = isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score)
            trials.append((dict(params), float(score) if ok else None))
        self.parent_trials = trials
        if not any(score is not None for _, score in trials):
            raise SpaceError(
                "coarse_to_fine needs at least one parent trial with a finite score, "
                f"got none among {len(trials)} trials"
            )

    def top_trials(self) -> list[tuple[dict, float]]:
        """The best ``top_k`` scored trials, best first (ties keep the parent's order)."""
        scored = [(p, s) for p, s in self.parent_trials if s is not None]
        return sorted(scored, key=lambda t: -t[1] if self.maximize else t[1])[: self.top_k]

    def box(self, space: Space) -> Box:
        """The zoom box on ``space`` (the parent study's space)."""
        names = space.dimension_names
        if not names:
            return Box({}, {})
        top = np.stack([space.unit_from_params(p) for p, _ in self.top_trials()])  # (k, d)
        lo, hi = top.min(axis=0), top.max(axis=0)
        width = np.maximum(hi - lo, self.shrink)
        start = np.clip((lo + hi) / 2 - width / 2, 0.0, 1.0 - width)
        start = np.minimum(start, lo)  # guard against rounding: keep every top-k point inside
        stop = np.maximum(np.minimum(start + width, 1.0), hi)
        unit = {n: (float(a), float(b)) for n, a, b in zip(names, start, stop)}
        values = {n: space.params[n].value_range(*unit[n]) for n in names}
        return Box(unit, values)

    def _sample_unit(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        box = self.box(space)
        return box.low + rng.random((n, space.n_dims)) * (box.high - box.low)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "parent_trials": [{"params": p, "score": s} for p, s in self.parent_trials],
            "top_k": self.top_k,
            "shrink": self.shrink,
            "maximize": self.maximize,
        }


SAMPLERS: dict[str, type[Sampler]] = {
    cls.kind: cls for cls in (GridSampler, RandomSampler, QuasiRandomSampler, CoarseToFineSampler)
}


def sampler_from_dict(d: Mapping[str, Any]) -> Sampler:
    """Rebuild a sampler from its ``to_dict()``; unknown kinds or keys are a SpaceError."""
    kind = d.get("kind") if isinstance(d, Mapping) else None
    if kind not in SAMPLERS:
        raise SpaceError(f"unknown sampler kind {kind!r}; valid kinds: {', '.join(SAMPLERS)}")
    cls = SAMPLERS[kind]
    valid = list(inspect.signature(cls).parameters)
    unknown = sorted(set(d) - set(valid) - {"kind"})
    if unknown:
        raise SpaceError(f"unknown keys {unknown} for a {kind} sampler; valid keys: {valid}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})
