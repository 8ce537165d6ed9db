"""What every sampler that learns shares: a space-filling start, the data it learns from, and
the slices it shows.

:class:`LearningSampler` answers the first ``n_startup`` sampled trials (and any trial asked
while fewer than ``min_observations`` results are in) with rows of a scrambled Sobol sequence
seeded by the study's seed, the same rows a ``quasi_random`` study asks; after that its
subclass's ``_propose`` chooses the point from an :class:`Observed`:

- the results to learn from (``History.observations``): in a multi-fidelity study, the highest
  epoch at which at least ``min_observations`` trials have a score (BOHB's rule), a diverged
  trial counted as the worst result;
- the pending trials' points (asked, not finished, no score at that epoch yet), so parallel
  workers are not sent to the same place;
- every point *snapped*: an ``Int`` or ``Choice`` coordinate moved to the centre of its value's
  bin, so two points with the same params are the same point to a model.

:func:`slices` is the belief the dashboard draws for a model: for each searched parameter, the
predicted score (mean and a band) along that parameter's axis with the others held at the best
trial's point, with values on the parameter's own scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.search import scales
from engine.search.dimensions import Choice, Int
from engine.search.history import History
from engine.search.objective import Objective
from engine.search.samplers.base import Sampler, count
from engine.search.samplers.batch import QuasiRandomSampler
from engine.search.space import Space

SLICE_POINTS = 41  # points per slice of a numeric parameter

_blas: list = []  # a threadpoolctl controller, made on first use (inspecting the libraries once)


def one_blas_thread() -> Any:
    """A context limiting BLAS to one thread: a model's small matrices run several times faster
    on one thread than on two contended ones (measured: 0.7 ms against 7.8 ms for a 100 x 100
    solve while the other core was busy). SciPy links an OpenBLAS of its own, apart from
    NumPy's; the controller only limits the libraries loaded when it is made, so SciPy is
    imported first (without it the GP's solves ran on two threads: 0.1 ms -> 3.8 ms at n=40)."""
    if not _blas:
        import scipy.linalg  # noqa: F401  SciPy's own OpenBLAS: loaded before the controller
        from threadpoolctl import ThreadpoolController  # looks, or it is never limited

        _blas.append(ThreadpoolController())
    return _blas[0].limit(limits=1, user_api="blas")


def snap(space: Space, units: np.ndarray) -> np.ndarray:
    """``units`` ``(n, d)`` with every Int/Choice coordinate at the centre of its value's bin
    (the same value as ``dim.to_unit(dim.from_unit(u))``, vectorised)."""
    out = np.array(units, dtype=np.float64, copy=True).reshape(-1, space.n_dims)
    for j, dim in enumerate(space.params.values()):
        if isinstance(dim, Choice):
            k = len(dim.options)
            out[:, j] = (option_index(out[:, j], k) + 0.5) / k
        elif isinstance(dim, Int):
            edges = (dim.low - 0.5, dim.high + 0.5, dim.scale)
            value = np.clip(np.floor(scales.from_unit(out[:, j], *edges) + 0.5), dim.low,
                            dim.high)
            out[:, j] = scales.to_unit(value, *edges)
    return out


def option_index(u: np.ndarray, k: int) -> np.ndarray:
    """The option (0..k-1) whose bin holds each unit coordinate of ``u``; shape kept."""
    return np.minimum(np.floor(np.clip(u, 0.0, 1.0) * k), k - 1).astype(int)


def first_new(points: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """The first row of ``points`` that is not (within 1e-9) a pending point, else the first."""
    for point in points:
        if not len(pending) or np.min(np.max(np.abs(pending - point), axis=1)) > 1e-9:
            return point
    return points[0]


def choice_columns(space: Space) -> list[tuple[int, int]]:
    """``(column, number of options)`` of every Choice dimension with two options or more."""
    return [(j, len(dim.options)) for j, dim in enumerate(space.params.values())
            if isinstance(dim, Choice) and len(dim.options) > 1]


def numeric_columns(space: Space) -> list[int]:
    """Columns of the Float and Int dimensions (those a local search may move continuously)."""
    return [j for j, dim in enumerate(space.params.values()) if not isinstance(dim, Choice)]


def learnable(space: Space) -> bool:
    """Whether a model has anything to learn: a Float/Int or a Choice of two options or more
    (a space of single-option Choices has one point, and no model can be fitted on it)."""
    return bool(numeric_columns(space) or choice_columns(space))


@dataclass(frozen=True)
class Observed:
    """What a model learns from. ``units (n, d)`` and ``losses (n,)`` (lower is better) at
    ``epoch``, of the trials ``numbers (n,)``; ``pending (p, d)``: points asked but without a
    result at that epoch."""

    units: np.ndarray
    losses: np.ndarray
    epoch: int | None
    pending: np.ndarray
    objective: Objective
    numbers: np.ndarray

    @property
    def n(self) -> int:
        return len(self.losses)

    def best_unit(self) -> np.ndarray:
        """The point with the lowest loss (the first of ties)."""
        return self.units[int(np.argmin(self.losses))]


def observed(space: Space, history: History, min_count: int) -> Observed:
    """The :class:`Observed` of ``history`` (see the module docstring)."""
    numbers, units, losses, epoch = history.observed_trials(min_count=min_count)
    pending = [t.point() for t in history.pending()
               if epoch is None or t.scores.get(epoch) is None]
    pending_units = np.stack(pending) if pending else np.zeros((0, space.n_dims))
    return Observed(snap(space, units) if len(units) else np.zeros((0, space.n_dims)),
                    np.asarray(losses, dtype=np.float64), epoch,
                    snap(space, pending_units), history.objective, numbers)


class LearningSampler(Sampler):
    """Base of the samplers that learn: Sobol rows first, then ``_propose``."""

    learns: ClassVar[bool] = True

    def __init__(self, n_startup: int = 10, min_observations: int | None = None):
        self.n_startup = count(n_startup, "n_startup", 1)
        self.min_observations = (
            None if min_observations is None else count(min_observations, "min_observations", 2)
        )

    def needed(self, space: Space) -> int:
        """How many results a model needs before it is used (default: ``max(4, d + 2)``, at
        most ``n_startup``)."""
        if self.min_observations is not None:
            return self.min_observations
        return min(max(4, space.n_dims + 2), max(2, self.n_startup))

    def _ask(self, space: Space, history: History, rng: np.random.Generator):
        if space.n_dims == 0:
            return np.zeros(0)
        k = sum(1 for t in history.trials if t.origin == "sampler")
        data = observed(space, history, self.needed(space))
        if k < self.n_startup or data.n < self.needed(space) or not learnable(space):
            return self.startup_row(space, k, history.seed)
        with one_blas_thread():
            return self._propose(space, data, rng)

    def startup_row(self, space: Space, k: int, seed: int) -> np.ndarray:
        """Row ``k`` of the study's scrambled Sobol sequence (a quasi_random study's trial k)."""
        sobol = self.__dict__.setdefault("_sobol", QuasiRandomSampler("sobol"))
        length = 1 << max(k, 15).bit_length()
        return snap(space, sobol._rows(space, length, seed)[k])[0]

    def _propose(self, space: Space, data: Observed, rng: np.random.Generator) -> np.ndarray:
        """The next point once a model can be fitted (``data.n >= needed``)."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"n_startup": self.n_startup, "min_observations": self.min_observations}


def slice_units(space: Space, centre: np.ndarray) -> list[np.ndarray]:
    """For each dimension ``j``: snapped points ``(m, d)`` equal to ``centre`` except along axis
    ``j`` (every option of a Choice, ``SLICE_POINTS`` even steps of a Float, the distinct
    values among as many steps of an Int), in increasing order along the axis."""
    out = []
    for j, dim in enumerate(space.params.values()):
        if isinstance(dim, Choice):
            axis = (np.arange(len(dim.options)) + 0.5) / len(dim.options)
        else:
            axis = np.linspace(0.0, 1.0, SLICE_POINTS)
        points = np.tile(centre, (len(axis), 1))
        points[:, j] = axis
        points = snap(space, points)
        if isinstance(dim, Int):
            points = points[np.unique(points[:, j], return_index=True)[1]]
        out.append(points)
    return out


def slices(
    space: Space,
    centre: np.ndarray,
    predict: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]],
    objective: Objective,
    data: Observed,
) -> dict:
    """The belief a model shows: ``predict(units (m, d), j) -> (loss, loss_low, loss_high)``,
    each ``(m,)``, evaluated along each axis ``j`` through ``centre``; returned as scores (the
    objective's direction) with values on each parameter's own scale, and the observed points.
    """
    sign = -1.0 if objective.maximize else 1.0
    params = {}
    for j, ((name, dim), units) in enumerate(zip(space.params.items(),
                                                 slice_units(space, centre))):
        mean, low, high = (np.asarray(a, dtype=np.float64) for a in predict(units, j))
        a, b = sign * low, sign * high
        params[name] = {
            "values": [dim.from_unit(float(u)) for u in units[:, j]],
            "mean": (sign * mean).tolist(),
            "low": np.minimum(a, b).tolist(),
            "high": np.maximum(a, b).tolist(),
        }
    observed_points = [
        {"params": {n: dim.from_unit(float(u)) for (n, dim), u in zip(space.params.items(), row)},
         "score": float(sign * loss)}
        for row, loss in zip(data.units, data.losses)
    ]
    return {
        "epoch": data.epoch,
        "through": {n: dim.from_unit(float(u)) for (n, dim), u in zip(space.params.items(),
                                                                      centre)},
        "slices": params,
        "observed": observed_points,
    }
