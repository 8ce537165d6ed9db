"""Samplers that do not learn: grid, random and quasi-random sequences of the unit cube.

Each is a :class:`~engine.search.samplers.base.SequenceSampler`: sampled trial ``k`` of a study is
row ``k`` of a sequence seeded by the study's seed, so a study asks the same trials whether it
runs in one go or is resumed, and (except for Latin hypercube sampling, drawn for the whole
budget at once) the first ``m`` rows do not depend on how many are drawn.

- :class:`GridSampler`: ``points_per_axis`` unit points per axis at the centres of equal cells
  (``ends=True``: evenly from one end to the other), every option of a ``Choice`` whatever
  ``points_per_axis`` is, repeated ``Int`` values dropped; exhaustive, no duplicates,
  in a seeded random order (``shuffle=False`` keeps lexicographic order). It runs out after the
  last point.
- :class:`RandomSampler`: uniform in the unit cube.
- :class:`QuasiRandomSampler`: scrambled Sobol or Latin hypercube from ``scipy.stats.qmc``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from engine.search.dimensions import Choice, Int
from engine.search.samplers.base import SequenceSampler, count
from engine.search.scales import SpaceError
from engine.search.space import Space


class GridSampler(SequenceSampler):
    """Every combination of ``points_per_axis`` points per axis; at most ``max_grid_size``.

    The points are the centres of ``points_per_axis`` equal cells of each axis (2 points on a
    learning rate 1e-5..1: 1.8e-4 and 5.6e-2, not the extremes 1e-5 and 1); ``ends=True`` puts
    the first and last points on the ends of the range. A Choice contributes all its options.
    """

    kind = "grid"
    summary = ("every combination of a few values per axis: for one or two knobs, to see the "
               "whole picture (it spends trials on knobs that do not matter)")

    def __init__(self, points_per_axis: int = 5, max_grid_size: int = 10_000,
                 shuffle: bool = True, ends: bool = False):
        self.points_per_axis = count(points_per_axis, "points_per_axis", 1)
        self.max_grid_size = count(max_grid_size, "max_grid_size", 1)
        self.shuffle = bool(shuffle)
        if not isinstance(ends, bool):
            raise SpaceError(f"ends must be true or false, got ends={ends!r}")
        self.ends = ends

    def axes(self, space: Space) -> list[np.ndarray]:
        """The unit points of each axis, in dimension order."""
        return [dim.grid_units(self.points_per_axis, self.ends) for dim in space.params.values()]

    def grid_size(self, space: Space) -> int:
        """Number of grid points: the product of the axes' point counts."""
        return math.prod(len(axis) for axis in self.axes(space))

    def grid_count(self, space: Space) -> str:
        """The grid size in words, axis by axis, e.g. ``"18 = 3 learning_rate x 3 hidden_units
        x 2 batch_norm (every option)"``: a Choice says it uses all its options, an Int with
        fewer values than points says it has all of them."""
        parts = []
        for (name, dim), axis in zip(space.params.items(), self.axes(space)):
            note = ""
            if isinstance(dim, Choice):
                note = " (every option)"
            elif isinstance(dim, Int) and len(axis) < self.points_per_axis:
                note = " (all its values)"
            parts.append(f"{len(axis)} {name}{note}")
        size = math.prod(len(axis) for axis in self.axes(space))
        return f"{size:,} = " + " x ".join(parts) if parts else "1 (nothing searched)"

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

    def _sequence(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
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
            "ends": self.ends,
        }


class RandomSampler(SequenceSampler):
    """Independent uniform points of the unit cube (log-uniform on a log axis, and so on)."""

    kind = "random"
    summary = "independent uniform draws: a sound first look at any number of knobs"

    def _sequence(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random((n, space.n_dims))

    def to_dict(self) -> dict:
        return {"kind": self.kind}


QMC_METHODS = ("sobol", "lhs")


class QuasiRandomSampler(SequenceSampler):
    """Scrambled, seeded low-discrepancy points: ``"sobol"`` or ``"lhs"`` (Latin hypercube)."""

    kind = "quasi_random"
    summary = ("points that cover the space more evenly than random ones (Sobol or Latin "
               "hypercube): a little better than random for small budgets")

    def __init__(self, method: str = "sobol"):
        if method not in QMC_METHODS:
            raise SpaceError(f"unknown method {method!r}; valid methods: {', '.join(QMC_METHODS)}")
        self.method = method
        self.prefix_stable = method != "lhs"  # a Latin hypercube is stratified for its own n

    def _sequence(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
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
