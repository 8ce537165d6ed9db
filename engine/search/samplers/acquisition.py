"""Acquisition for model-based samplers: log expected improvement and its maximisation in the
unit cube.

:func:`log_expected_improvement` is ``log E[max(best - f, 0)]`` for ``f ~ N(mean, std**2)``
(minimisation), computed without underflow far from the incumbent, where the plain formula
gives ``log 0``: there the ranking of candidates still matters (Ament et al., "Unexpected
improvements to expected improvement", 2023, give the three-branch form used here).

:func:`maximise` ranks points of the cube by an acquisition function: many scrambled Sobol
candidates (``scipy.stats.qmc``) and perturbations of the best observed points, then L-BFGS-B
(``scipy.optimize``) from the best few, moving only the numeric coordinates (a Choice stays at
the option its start point has). SciPy is imported on first use (a study that never fits a
model does not pay for it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_SQRT_HALF_PI = 0.5 * math.log(math.pi / 2)
_TAIL = -1.0 / math.sqrt(np.finfo(np.float64).eps)  # below this, the asymptote is exact


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and far below it."""
    return np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(z * Phi(z) + phi(z))`` elementwise, finite for ``|z| < 1e154``; shape kept."""
    from scipy.special import erfcx, log_ndtr

    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    near = z > -1.0
    zn = z[near]
    out[near] = np.log(zn * np.exp(log_ndtr(zn)) + np.exp(-0.5 * zn * zn - _LOG_SQRT_2PI))
    mid = ~near & (z > _TAIL)
    zm = z[mid]
    out[mid] = (-0.5 * zm * zm - _LOG_SQRT_2PI
                + _log1mexp(np.log(erfcx(-zm / math.sqrt(2)) * np.abs(zm)) + _LOG_SQRT_HALF_PI))
    far = ~near & ~mid
    zf = z[far]
    out[far] = -0.5 * zf * zf - _LOG_SQRT_2PI - 2.0 * np.log(np.abs(zf))
    return out


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Log EI below ``best`` of predictions ``mean``, ``std`` (both ``(m,)``, ``std > 0``)."""
    std = np.maximum(np.asarray(std, dtype=np.float64), 1e-12)
    z = (best - np.asarray(mean, dtype=np.float64)) / std
    return np.log(std) + log_h(z)


Acquisition = Callable[[np.ndarray], np.ndarray]  # units (m, d) -> values (m,), higher better


def sobol(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` scrambled Sobol points of ``[0, 1]^d``, shape ``(n, d)``."""
    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        return qmc.Sobol(d, scramble=True, rng=rng).random(n)


def candidates(
    best: np.ndarray, d: int, rng: np.random.Generator, n_sobol: int = 1024, n_local: int = 256,
    scale: float = 0.05, bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Sobol points of the cube plus Gaussian steps (``scale``) around each row of ``best``
    ``(k, d)``, clipped to the cube: ``(n_sobol + n_local, d)``. ``bounds``: ``(low, high)``
    ``(d,)``, a box to draw in instead of the cube (the steps clipped to it)."""
    low, high = (np.zeros(d), np.ones(d)) if bounds is None else bounds
    points = [low + sobol(n_sobol, d, rng) * (high - low)]
    if len(best) and n_local:
        centres = best[rng.integers(0, len(best), n_local)]
        steps = rng.standard_normal((n_local, d)) * scale * rng.choice([0.2, 1.0, 4.0],
                                                                         (n_local, 1))
        points.append(np.clip(centres + steps, low, high))
    return np.concatenate(points)


def maximise(
    acquisition: Acquisition,
    start: np.ndarray,
    numeric: list[int],
    n_refine: int = 4,
    max_iter: int = 40,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank the points ``start`` ``(m, d)`` by ``acquisition`` and refine the best ``n_refine``
    with L-BFGS-B over the columns ``numeric`` (within ``bounds``, ``(low, high)`` ``(d,)``,
    if given, else the cube); returns ``(points (m, d), values (m,))``, best
    first (refined points replace their starts).

    The starts are refined together, as one problem whose objective is the sum of their
    acquisitions (the terms are independent, so its optimum is each start's own local optimum),
    with a forward-difference gradient: one batched evaluation of ``r * (q + 1)`` points per
    step instead of ``r * (q + 1)`` calls."""
    from scipy.optimize import minimize

    points = np.array(start, dtype=np.float64, copy=True)
    values = np.asarray(acquisition(points), dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    points, values = points[order], values[order]
    r, q = min(n_refine, len(points)), len(numeric)
    if not q or not r:
        return points, values
    base = points[:r]  # (r, d)
    h = 1e-6
    low, high = (np.zeros(base.shape[1]), np.ones(base.shape[1])) if bounds is None else bounds
    box = list(zip(np.tile(low[numeric], r), np.tile(high[numeric], r)))

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = x.reshape(r, q)
        step = np.where(x + h <= 1.0, h, -h)  # (r, q)
        batch = np.repeat(base[:, None, :], q + 1, axis=1)  # (r, q + 1, d)
        batch[:, :, numeric] = x[:, None, :]
        batch[:, np.arange(1, q + 1), numeric] += step
        f = -np.asarray(acquisition(batch.reshape(-1, base.shape[1])), np.float64)
        f = np.where(np.isfinite(f), f, 1e300).reshape(r, q + 1)
        return float(f[:, 0].sum()), ((f[:, 1:] - f[:, :1]) / step).ravel()

    result = minimize(negative, base[:, numeric].ravel(), jac=True, method="L-BFGS-B",
                      bounds=box, options={"maxiter": max_iter})
    refined = base.copy()
    refined[:, numeric] = np.clip(result.x.reshape(r, q), low[numeric], high[numeric])
    new_values = np.asarray(acquisition(refined), dtype=np.float64)
    better = new_values > values[:r]
    points[:r][better], values[:r][better] = refined[better], new_values[better]
    order = np.argsort(-values, kind="stable")
    return points[order], values[order]
