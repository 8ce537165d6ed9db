"""Population-based training, the pure part: who copies whom, and how the copy's knobs move.

At every round boundary the whole population has trained to the same epoch. Ranked by score
(higher is better when ``maximize``; a missing or non-finite score ranks last, ties go to the
lower trial id), the bottom ``quantile`` of the trials (at least one when there are two or more)
each *exploit* a trial drawn at random from the top ``quantile``: they take its checkpoint (its
weights, optimizer and RNG state: the caller does that) and its params, and then *explore*.

Explore moves each searched dimension of the donor's params:

- a training knob (:data:`MUTABLE`: what may change between epochs of one model) is, with
  probability ``resample_probability``, resampled uniformly in the unit interval; otherwise a
  ``Float``/``Int`` is multiplied by a factor drawn from ``perturb`` on its own scale and clipped
  to its bounds (``log`` and ``linear``: ``x * f``; ``one_minus_log``: ``1 - (1 - x) * f``, so a
  beta moves by a constant step in unit space just as a log value does; an ``Int`` that the
  factor would leave unchanged moves by one), and a ``Choice`` keeps the donor's value;
- anything else (``hidden_layers``, ``hidden_units``, ``activation``, ``batch_norm``, ``init``,
  ``optimizer``) is fixed by the copied checkpoint: sampled once at round 0, then copied from
  the donor together with its weights, never perturbed.

A linear ``Float`` at exactly 0 (say ``l2``) only leaves 0 by resampling. Fixed values are
copied from the donor as they are. Everything here draws from the ``numpy.random.Generator``
given, so a seed fixes the result.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from engine.search.dimensions import Choice, Dimension, Float, Int
from engine.search.knobs import KNOBS
from engine.search.scales import SpaceError
from engine.search.space import Space

MUTABLE: tuple[str, ...] = tuple(
    name for name, k in KNOBS.items() if k.target == "train" and name != "optimizer"
)
"""Knobs PBT may change mid-run (the optimizer is not: its slots travel with the checkpoint)."""


def _space(space: Space | Mapping) -> Space:
    return space if isinstance(space, Space) else Space.from_dict(space)


def frozen_dims(space: Space | Mapping) -> list[str]:
    """Searched dimensions PBT never perturbs: sampled at round 0, copied with the weights."""
    return [name for name in _space(space).dimension_names if name not in MUTABLE]


def check_space(space: Space | Mapping) -> None:
    """SpaceError unless the space searches at least one knob that PBT can perturb."""
    space = _space(space)
    if not any(name in MUTABLE for name in space.dimension_names):
        searched = ", ".join(space.dimension_names) or "nothing"
        raise SpaceError(
            "population-based training perturbs searched training knobs (one of "
            f"{', '.join(MUTABLE)}); this space searches {searched}: search at least one, "
            "e.g. learning_rate"
        )


def perturb_value(dim: Dimension, value: Any, factor: float) -> Any:
    """``value`` multiplied by ``factor`` on ``dim``'s scale, clipped to its bounds (see the
    module docstring); a ``Choice`` value is returned unchanged."""
    if isinstance(dim, Float):
        x = float(value)
        x = 1.0 - (1.0 - x) * factor if dim.scale == "one_minus_log" else x * factor
        return min(max(x, dim.low), dim.high)
    if isinstance(dim, Int):
        x = int(value)
        moved = int(round(x * factor))
        if moved == x and factor != 1:
            moved = x + (1 if factor > 1 else -1)
        return min(max(moved, dim.low), dim.high)
    return value


def explore(
    params: Mapping[str, Any],
    space: Space | Mapping,
    rng: np.random.Generator,
    *,
    perturb: Sequence[float] = (0.8, 1.2),
    resample_probability: float = 0.25,
) -> dict[str, Any]:
    """A copy of ``params`` with each searched training knob perturbed or resampled."""
    space = _space(space)
    out = dict(params)
    for name, dim in space.params.items():
        if name not in MUTABLE:
            continue
        if rng.random() < resample_probability:
            out[name] = dim.from_unit(float(rng.random()))
        elif not isinstance(dim, Choice):
            factor = float(perturb[int(rng.integers(len(perturb)))])
            out[name] = perturb_value(dim, out[name], factor)
    return out


def _rank_key(score: Any, maximize: bool) -> tuple[int, float]:
    ok = isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score)
    if not ok:
        return (1, 0.0)
    return (0, -float(score) if maximize else float(score))


def n_exploit(n: int, quantile: float) -> int:
    """How many trials of a population of ``n`` are replaced (and how many may donate)."""
    return 0 if n < 2 else max(1, int(quantile * n))


def exploit_explore(
    scores: Mapping[Hashable, float],
    params: Mapping[Hashable, Mapping[str, Any]],
    space: Space | Mapping,
    rng: np.random.Generator,
    *,
    quantile: float = 0.25,
    perturb: Sequence[float] = (0.8, 1.2),
    resample_probability: float = 0.25,
    maximize: bool = True,
) -> dict[Hashable, tuple[Hashable, dict[str, Any]]]:
    """``{recipient_id: (donor_id, new_params)}`` for one round boundary.

    ``scores`` holds every live trial of the population (trial id -> score at the boundary),
    ``params`` their current params. Recipients are the bottom ``n_exploit(n, quantile)``,
    visited in id order; each draws its donor uniformly from the top as many.
    """
    missing = [tid for tid in scores if tid not in params]
    if missing:
        raise SpaceError(f"params are missing for trials {missing}")
    ranked = sorted(scores, key=lambda tid: (_rank_key(scores[tid], maximize), tid))
    k = n_exploit(len(ranked), quantile)
    if k == 0:
        return {}
    top, bottom = ranked[:k], sorted(ranked[-k:])
    out = {}
    for recipient in bottom:
        donor = top[int(rng.integers(k))]
        out[recipient] = (donor, explore(params[donor], space, rng, perturb=perturb,
                                         resample_probability=resample_probability))
    return out
