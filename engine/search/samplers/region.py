"""A trust region for the gp sampler (``trust_region=True``): TuRBO's box around the incumbent.

Eriksson et al., "Scalable global optimization via local Bayesian optimization" (2019): the
acquisition is maximised only inside a box centred on the best result, its side on each numeric
axis proportional to the model's length scale there (normalised to a geometric mean of 1, so an
axis the model finds flat keeps its whole range and the axes that matter are narrowed), times a
base side that doubles after ``SUCCESSES`` improving results in a row and halves after
``max(4, d)`` results in a row that do not improve (an improvement: below the best so far by
more than ``IMPROVEMENT`` of the losses' range). Below ``SIDE_MIN`` the side starts again at
``SIDE_INIT`` (TuRBO restarts from scratch; here the model keeps its data and the box widens).

The side is replayed from the results in trial-number order on every ask (no state is kept on
the sampler), so it is a pure function of the history, as the rest of an ask is. A Choice keeps
every option: options have no order to narrow along.
"""

from __future__ import annotations

import numpy as np

SIDE_INIT, SIDE_MIN, SIDE_MAX = 0.8, 0.5**7, 1.6  # TuRBO-1's
SUCCESSES = 3  # improving results in a row that double the side
LONGEST = 2.0  # TuRBO's upper bound on a length scale: longer than the cube is flat anyway
IMPROVEMENT = 1e-3  # of the losses' range: what counts as an improvement


def side(losses: np.ndarray, numbers: np.ndarray, n_start: int, n_dims: int) -> float:
    """The base side after the results ``losses`` ``(n,)`` of trials ``numbers``: the first
    ``n_start`` results (by trial number) set the best, each later one counts as a success or
    a failure (module docstring)."""
    order = np.argsort(numbers, kind="stable")
    losses = np.asarray(losses, dtype=np.float64)[order]
    if len(losses) <= n_start:
        return SIDE_INIT
    tolerance = IMPROVEMENT * float(np.ptp(losses))
    failures_allowed = max(4, n_dims)
    length, best = SIDE_INIT, float(np.min(losses[:n_start]))
    successes = failures = 0
    for loss in losses[n_start:]:
        if loss < best - tolerance:
            successes, failures = successes + 1, 0
        else:
            successes, failures = 0, failures + 1
        if successes == SUCCESSES:
            length, successes = min(2.0 * length, SIDE_MAX), 0
        elif failures == failures_allowed:
            length, failures = length / 2.0, 0
            if length < SIDE_MIN:
                length = SIDE_INIT
        best = min(best, float(loss))
    return length


def box(centre: np.ndarray, numeric: list[int], length_scales: np.ndarray,
        base: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` ``(d,)`` of the box around ``centre`` ``(d,)``: on the columns
    ``numeric`` a side of ``base`` times their ``length_scales`` ``(len(numeric),)`` over
    their geometric mean, clipped to the cube; ``[0, 1]`` on the others. A length scale counts
    as at most ``LONGEST``: the fit's bound is 100, and 6 flat axes at 100 would narrow two at
    0.2 to a hundredth of the cube."""
    low, high = np.zeros(len(centre)), np.ones(len(centre))
    if not numeric:
        return low, high
    scales = np.minimum(np.asarray(length_scales, dtype=np.float64), LONGEST)
    weights = scales / np.exp(np.mean(np.log(scales)))
    half = 0.5 * base * weights
    low[numeric] = np.clip(centre[numeric] - half, 0.0, 1.0)
    high[numeric] = np.clip(centre[numeric] + half, 0.0, 1.0)
    return low, high
