"""Automatic coarse to fine in one study: the ``zoom`` sampler.

The lecture's method without a second study made by hand. Round 0 is ``first_round`` trials of
a scrambled Sobol sequence over the whole cube (the same rows a ``quasi_random`` study asks).
Round ``r >= 1`` is the next ``round_size`` trials, sampled inside a box:

- its width on every numeric axis is ``shrink ** r`` of the cube (so zooming again always goes below
  the last box: with ``shrink = 0.5`` the widths are 1/2, 1/4, 1/8, ...), never less than
  ``min_width``;
- it is centred on the bounding box of the best ``top_fraction`` of the results known when the
  round begins (those of the trials asked before it, at the highest rung with enough results;
  a diverged trial counts as the worst), slid so that the best trial stays inside it, and kept
  inside the cube;
- a Choice is not narrowed: its options have no order, so a box along its unit axis would keep
  a run of neighbours in the list and could drop the options that did best (as
  ``coarse_to_fine`` does, the box keeps every option and only the numbers narrow);
- about ``explore`` of each round's trials are drawn over the whole cube instead, so a better
  region found by chance can move the next box.

Inside a box the points follow a scrambled Sobol sequence of their own round, so parallel
workers get distinct points. Each round's box is part of :meth:`ZoomSampler.describe`, for the
sampled-points charts. A round's box depends only on trials asked before the round began; the
first points of a round may be asked while some of those are still running, and the box then
moves once they finish (``describe`` shows the box as it stands).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from engine.search.dimensions import Choice
from engine.search.history import History
from engine.search.samplers.base import count
from engine.search.samplers.batch import QuasiRandomSampler
from engine.search.samplers.coarse import Box
from engine.search.samplers.learning import LearningSampler, snap
from engine.search.scales import SpaceError
from engine.search.space import Space


def _fraction(value: Any, field: str, low_open: bool, high: float) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and (
        value > 0 if low_open else value >= 0) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}0, {high:g}]"
        raise SpaceError(f"{field} must be a number in {interval}, got {field}={value!r}")
    return float(value)


class ZoomSampler(LearningSampler):
    """Coarse to fine in rounds (module docstring)."""

    kind = "zoom"
    summary = ("coarse to fine in one study: broad first, then ever smaller boxes around the "
               "best trials; easy to follow on the charts")

    def __init__(self, first_round: int = 16, round_size: int = 8, shrink: float = 0.5,
                 top_fraction: float = 0.2, explore: float = 0.2, min_width: float = 0.05,
                 min_observations: int | None = None):
        super().__init__(first_round, min_observations)
        self.round_size = count(round_size, "round_size", 1)
        self.shrink = _fraction(shrink, "shrink", True, 0.9)
        self.top_fraction = _fraction(top_fraction, "top_fraction", True, 1.0)
        self.explore = _fraction(explore, "explore", False, 1.0)
        self.min_width = _fraction(min_width, "min_width", True, 1.0)

    # -- rounds -------------------------------------------------------------------------------
    def round_of(self, k: int) -> tuple[int, int]:
        """``(round, position in it)`` of the ``k``-th sampled trial."""
        if k < self.n_startup:
            return 0, k
        r, position = divmod(k - self.n_startup, self.round_size)
        return r + 1, position

    def round_start(self, r: int) -> int:
        """The index (among sampled trials) of round ``r``'s first trial."""
        return 0 if r == 0 else self.n_startup + (r - 1) * self.round_size

    def width(self, r: int) -> float:
        return max(self.min_width, self.shrink ** r)

    def box(self, space: Space, history: History, r: int, before: int) -> Box | None:
        """Round ``r``'s box from the trials numbered below ``before`` (None: not enough
        results yet, the round samples the whole cube)."""
        known = History(history.trials[:before], history.objective, history.seed,
                        history.n_trials)
        units, losses, _ = known.observations(min_count=self.needed(space))
        if len(losses) < self.needed(space):
            return None
        units = snap(space, units)
        order = np.argsort(losses, kind="stable")
        top = units[order[: max(2, math.ceil(self.top_fraction * len(losses)))]]
        best = units[order[0]]
        width = self.width(r)
        start = (top.min(axis=0) + top.max(axis=0)) / 2 - width / 2
        margin = 0.1 * width
        start = np.clip(start, best - width + margin, best - margin)  # the best stays inside
        start = np.clip(start, 0.0, 1.0 - width)
        stop = start + width
        for j, name in enumerate(space.dimension_names):  # options have no order: keep them all
            if isinstance(space.params[name], Choice):
                start[j], stop[j] = 0.0, 1.0
        unit = {n: (float(a), float(b)) for n, a, b in zip(space.dimension_names, start, stop)}
        values = {name: space.params[name].value_range(*unit[name]) for name in unit}
        return Box(unit, values)

    def _round_number(self, history: History, r: int) -> int:
        """The number of round ``r``'s first trial (``history.number`` if it is the next)."""
        sampled = [t.number for t in history.trials if t.origin == "sampler"]
        first = self.round_start(r)
        return sampled[first] if first < len(sampled) else history.number

    # -- the contract -------------------------------------------------------------------------
    def _ask(self, space: Space, history: History, rng: np.random.Generator):
        if space.n_dims == 0:
            return np.zeros(0)
        k = sum(1 for t in history.trials if t.origin == "sampler")
        r, position = self.round_of(k)
        explore = rng.random() < self.explore
        box = None if r == 0 else self.box(space, history, r, self._round_number(history, r))
        if box is None or explore:
            return self.startup_row(space, k, history.seed)
        sobol = self.__dict__.setdefault("_box_sobol", QuasiRandomSampler("sobol"))
        length = 1 << max(position, self.round_size - 1, 1).bit_length()
        row = sobol._rows(space, length, _round_seed(history.seed, r))[position]
        return snap(space, box.low + row * (box.high - box.low))[0]

    def describe(self, space: Space, history: History) -> dict | None:
        if space.n_dims == 0:
            return None
        whole = {name: (0.0, 1.0) for name in space.dimension_names}
        rounds = [{"round": 0, "first_trial": 0, "width": 1.0, "box": Box(
            whole, {n: space.params[n].value_range(0.0, 1.0) for n in whole}).to_dict()}]
        n_sampled = sum(1 for t in history.trials if t.origin == "sampler")
        for r in range(1, self.round_of(n_sampled - 1)[0] + 1 if n_sampled else 1):
            number = self._round_number(history, r)
            box = self.box(space, history, r, number)
            rounds.append({"round": r, "first_trial": number, "width": self.width(r),
                           "box": None if box is None else box.to_dict()})
        return {"kind": self.kind, "rounds": rounds}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "first_round": self.n_startup, "round_size": self.round_size,
                "shrink": self.shrink, "top_fraction": self.top_fraction,
                "explore": self.explore, "min_width": self.min_width,
                "min_observations": self.min_observations}


def _round_seed(seed: int, r: int) -> int:
    """A seed for round ``r``'s Sobol sequence inside its box (distinct from the study's)."""
    return int(np.random.default_rng([int(seed), r, 0x200]).integers(2**62))
