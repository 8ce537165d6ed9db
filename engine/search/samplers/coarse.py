"""Coarse to fine by hand: sample inside a zoom box around the best trials of a parent study.

The lecture's method: after a coarse random search, zoom into the region where the best trials
are and search it more densely. :class:`CoarseToFineSampler` holds the parent's scored trials;
its :class:`Box` (in unit space, so every scale zooms alike) is their bounding box, widened to at
least ``shrink`` of each axis. A Choice is not zoomed: its options have no order, so a box along
its unit axis would drop options by their place in the list (``sgd``, first of the optimizers,
vanished from a child study); the box keeps every option and only the numbers narrow. Which
trials are best is the parent study's :class:`~engine.search.objective.Objective` (an error or
a loss is minimised). A zoom of a zoom study passes that study's own box as ``within``: the new
box is then at least ``shrink`` of the *parent's box* (not of the whole range) and inside it,
so zooming again goes below half the width. It does not learn from its own study's results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np

from engine.search.dimensions import Choice
from engine.search.objective import Objective
from engine.search.samplers.base import SequenceSampler, count
from engine.search.scales import SpaceError
from engine.search.space import Space


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


class CoarseToFineSampler(SequenceSampler):
    """Uniform points inside a box around the ``top_k`` best trials of a parent study.

    ``parent_trials``: ``(params, score)`` pairs (or ``{"params", "score"}`` dicts); trials with
    a missing or non-finite score are ignored. ``objective``: the parent study's objective dict
    (default maximise ``val_acc``); it alone says whether a higher score is better (the old
    ``maximize`` flag is read for stored studies: ``False`` means ``val_loss``). The box, in unit
    space, is the bounding box of the top-k, widened on each axis to at least ``shrink`` of the
    parent's range (centred on the top-k, slid inward to stay inside it): it always contains the
    top-k. The parent's range is the unit cube, or ``within`` (a ``Box.to_dict()``: the box the
    parent study itself sampled, for a zoom of a zoom).
    """

    kind = "coarse_to_fine"
    summary = "a second, finer search inside the best region of an earlier study"
    needs = ("a parent study's trials as [{\"params\": {...}, \"score\": x}, ...]; the studies "
             "page's zoom makes them, or use --sampler zoom to zoom within one study")

    def __init__(
        self,
        parent_trials: Sequence,
        top_k: int = 5,
        shrink: float = 0.5,
        maximize: bool | None = None,
        objective: Mapping | None = None,
        within: Mapping | None = None,
    ):
        self.top_k = count(top_k, "top_k", 1)
        if isinstance(shrink, bool) or not isinstance(shrink, Real) or not 0 < shrink <= 1:
            raise SpaceError(f"shrink must be in (0, 1], got shrink={shrink!r}")
        self.shrink = float(shrink)
        if objective is None and maximize is False:
            objective = {"metric": "val_loss"}  # a study stored before objectives existed
        self.objective = Objective.from_dict(objective)
        if maximize is not None and bool(maximize) != self.objective.maximize:
            raise SpaceError(
                f"maximize={maximize!r} contradicts the objective ({self.objective.label}): "
                "give the objective only"
            )
        self.within = _check_within(within)
        if isinstance(parent_trials, (str, bytes, Mapping)) or not isinstance(
                parent_trials, Iterable):
            raise SpaceError(f"parent_trials must be a list of trials, got {parent_trials!r}")
        trials = []
        for trial in parent_trials:
            if isinstance(trial, Mapping):
                params, score = trial.get("params"), trial.get("score")
            elif isinstance(trial, Sequence) and not isinstance(trial, str) and len(trial) == 2:
                params, score = trial
            else:
                raise SpaceError(
                    "each parent trial must be a {\"params\", \"score\"} dict or a "
                    f"(params, score) pair, got {trial!r}"
                )
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

    @property
    def maximize(self) -> bool:
        return self.objective.maximize

    def top_trials(self) -> list[tuple[dict, float]]:
        """The best ``top_k`` scored trials, best first (ties keep the parent's order)."""
        scored = [(p, s) for p, s in self.parent_trials if s is not None]
        return sorted(scored, key=lambda t: self.objective.loss(t[1]))[: self.top_k]

    def box(self, space: Space) -> Box:
        """The zoom box on ``space`` (the parent study's space)."""
        names = space.dimension_names
        if not names:
            return Box({}, {})
        top = np.stack([space.unit_from_params(p) for p, _ in self.top_trials()])  # (k, d)
        lo, hi = top.min(axis=0), top.max(axis=0)
        outer_lo, outer_hi = np.zeros(len(names)), np.ones(len(names))
        if self.within is not None:
            for j, name in enumerate(names):
                outer_lo[j], outer_hi[j] = self.within.get(name, (0.0, 1.0))
        outer_lo, outer_hi = np.minimum(outer_lo, lo), np.maximum(outer_hi, hi)
        width = np.minimum(np.maximum(hi - lo, self.shrink * (outer_hi - outer_lo)),
                           outer_hi - outer_lo)
        start = np.clip((lo + hi) / 2 - width / 2, outer_lo, outer_hi - width)
        start = np.minimum(start, lo)  # guard against rounding: keep every top-k point inside
        stop = np.maximum(np.minimum(start + width, outer_hi), hi)
        for j, name in enumerate(names):  # options have no order to zoom along: keep them all
            if isinstance(space.params[name], Choice):
                start[j], stop[j] = 0.0, 1.0
        unit = {n: (float(a), float(b)) for n, a, b in zip(names, start, stop)}
        values = {n: space.params[n].value_range(*unit[n]) for n in names}
        return Box(unit, values)

    def _sequence(self, space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
        box = self.box(space)
        return box.low + rng.random((n, space.n_dims)) * (box.high - box.low)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "parent_trials": [{"params": p, "score": s} for p, s in self.parent_trials],
            "top_k": self.top_k,
            "shrink": self.shrink,
            "objective": self.objective.to_dict(),
            "within": None if self.within is None else {"unit": {
                name: list(pair) for name, pair in self.within.items()}},
        }


def _check_within(within: Mapping | None) -> dict[str, tuple[float, float]] | None:
    """``within`` (``Box.to_dict()`` or just its ``"unit"`` part) as ``{name: (low, high)}``."""
    if within is None:
        return None
    unit = within.get("unit", within) if isinstance(within, Mapping) else None
    if not isinstance(unit, Mapping):
        raise SpaceError(f"within must be a box like {{'unit': {{name: [low, high]}}}}, "
                         f"got within={within!r}")
    out = {}
    for name, pair in unit.items():
        ok = isinstance(pair, Sequence) and len(pair) == 2 and all(
            isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x) for x in pair)
        if not ok or not 0.0 <= pair[0] <= pair[1] <= 1.0:
            raise SpaceError(f"within: {name} must be [low, high] with 0 <= low <= high <= 1, "
                             f"got {pair!r}")
        out[str(name)] = (float(pair[0]), float(pair[1]))
    return out
