"""Tree-structured Parzen estimators in the unit cube: the ``tpe`` sampler.

After a Sobol start (:class:`~engine.search.samplers.learning.LearningSampler`) the results are
split by a quantile of their losses into a *good* group (the best ``ceil(quantile * n)``) and a
*bad* one. Each group gets a multivariate Parzen density over the cube: one component per point
(a product of Gaussians truncated to ``[0, 1]`` on the numeric axes; on a Choice the point's own
option with probability ``1 - b``, any option with ``b = max(0.1, 1 / (n + 1))``, so the search
never locks onto the options its first good trials had), plus one uniform component of the same
weight, so no region ever has density 0.
Bandwidths follow Scott's rule per axis, with a floor of ``1 / (n + 1)`` of the axis that
shrinks as results come in. Candidates are drawn from the good density; the one with the
highest ``log l(x) - log g(x)`` is asked. Pending trials join the bad group (a constant liar),
so parallel workers are steered away from points already being tried.

The belief shown for the dashboard smooths the observed scores along each axis with the same
kind of kernels (a Nadaraya-Watson estimate, with a weighted spread as its band).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.search.history import History
from engine.search.samplers.learning import (
    LearningSampler,
    Observed,
    choice_columns,
    first_new,
    learnable,
    numeric_columns,
    observed,
    option_index,
    slices,
    snap,
)
from engine.search.scales import SpaceError
from engine.search.space import Space

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Parzen:
    """A Parzen density over the cube from ``points (n, d)`` (snapped), with the uniform prior
    as one more component of weight ``1 / (n + 1)``."""

    def __init__(self, space: Space, points: np.ndarray):
        self.numeric = numeric_columns(space)
        self.choices = choice_columns(space)
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, space.n_dims)
        self.d = space.n_dims
        n = len(self.points)
        q = max(1, len(self.numeric))
        spread = self.points[:, self.numeric].std(axis=0) if n > 1 else np.ones(len(self.numeric))
        scott = spread * (n + 1) ** (-1.0 / (q + 4))
        self.bandwidth = np.clip(scott, 1.0 / (n + 1), 1.0)  # (q,)
        # a component keeps its point's option with probability 1 - b, else any option: a hard
        # choice made the good group lock onto the options of its first members for good
        self.choice_smoothing = max(0.1, 1.0 / (n + 1))

    def _log_components(self, x: np.ndarray) -> np.ndarray:
        """Log density of each component at ``x (m, d)``: ``(m, n + 1)``, the prior last."""
        from scipy.special import ndtr

        m, n = len(x), len(self.points)
        out = np.zeros((m, n + 1))
        if self.numeric:
            mu = self.points[:, self.numeric]  # (n, q)
            sigma = self.bandwidth  # (q,)
            z = (x[:, None, self.numeric] - mu[None]) / sigma  # (m, n, q)
            mass = ndtr((1.0 - mu) / sigma) - ndtr(-mu / sigma)  # (n, q): inside [0, 1]
            log_pdf = -0.5 * z * z - _LOG_SQRT_2PI - np.log(sigma) - np.log(mass)[None]
            out[:, :n] = log_pdf.sum(axis=2)
        b = self.choice_smoothing
        for j, k in self.choices:
            same = option_index(x[:, j], k)[:, None] == option_index(self.points[:, j], k)[None]
            out[:, :n] += np.where(same, math.log(1.0 - b + b / k), math.log(b / k))
            out[:, n] -= math.log(k)
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at ``x (m, d)``: ``(m,)``."""
        from scipy.special import logsumexp

        n = len(self.points)
        return logsumexp(self._log_components(x), axis=1) - math.log(n + 1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points ``(n, d)`` drawn from the mixture."""
        from scipy.special import ndtr, ndtri

        k = len(self.points)
        which = rng.integers(0, k + 1, n)  # k: the uniform prior
        out = rng.random((n, self.d))
        from_point = which < k
        centres = self.points[which[from_point]]
        if self.numeric:
            mu, sigma = centres[:, self.numeric], self.bandwidth
            low, high = ndtr(-mu / sigma), ndtr((1.0 - mu) / sigma)
            u = low + rng.random(mu.shape) * (high - low)
            values = np.clip(mu + sigma * ndtri(np.clip(u, 1e-300, 1 - 1e-16)), 0.0, 1.0)
            block = out[from_point]
            block[:, self.numeric] = values
            out[from_point] = block
        for j, _ in self.choices:  # out[:, j] is uniform already: keep it with probability b
            keep = rng.random(len(centres)) >= self.choice_smoothing
            column = out[from_point, j]
            column[keep] = centres[keep, j]
            out[from_point, j] = column
        return out


class TPESampler(LearningSampler):
    """Multivariate TPE (module docstring). ``quantile``: the share of results in the good
    group; ``n_candidates``: points drawn from the good density per ask."""

    kind = "tpe"
    summary = ("learns which regions give good trials (Parzen estimators): quick to ask, for "
               "larger budgets, many knobs and choices")

    def __init__(self, n_startup: int = 10, min_observations: int | None = None,
                 quantile: float = 0.15, n_candidates: int = 32):
        super().__init__(n_startup, min_observations)
        if isinstance(quantile, bool) or not isinstance(quantile, int | float) or \
                not 0 < quantile < 1:
            raise SpaceError(f"quantile must be in (0, 1), got quantile={quantile!r}")
        self.quantile = float(quantile)
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise SpaceError(
                f"n_candidates must be an integer >= 1, got n_candidates={n_candidates!r}")
        self.n_candidates = n_candidates

    def split(self, space: Space, data: Observed) -> tuple[Parzen, Parzen]:
        """The good and bad densities (pending points in the bad one)."""
        order = np.argsort(data.losses, kind="stable")
        n_good = max(1, math.ceil(self.quantile * data.n))
        good = data.units[order[:n_good]]
        bad = np.concatenate([data.units[order[n_good:]], data.pending])
        return Parzen(space, good), Parzen(space, bad)

    def _propose(self, space: Space, data: Observed, rng: np.random.Generator) -> np.ndarray:
        good, bad = self.split(space, data)
        points = snap(space, good.sample(self.n_candidates, rng))
        ratio = good.log_pdf(points) - bad.log_pdf(points)
        return first_new(points[np.argsort(-ratio, kind="stable")], data.pending)

    def describe(self, space: Space, history: History) -> dict | None:
        data = observed(space, history, self.needed(space))
        if not learnable(space) or data.n < self.needed(space):
            return None
        smoother = Parzen(space, data.units)
        numeric = {j: i for i, j in enumerate(smoother.numeric)}
        prior_mean, prior_sd = float(np.mean(data.losses)), float(np.std(data.losses))

        def predict(units: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if j in numeric:
                sigma = smoother.bandwidth[numeric[j]]
                z = (units[:, j, None] - data.units[None, :, j]) / sigma  # (m, n)
                weights = np.exp(-0.5 * z * z)
            else:
                weights = (np.abs(units[:, j, None] - data.units[None, :, j]) < 1e-9) * 1.0
            total = weights.sum(axis=1) + 1.0  # the prior counts as one observation
            mean = (weights @ data.losses + prior_mean) / total
            second = (weights @ data.losses**2 + prior_mean**2 + prior_sd**2) / total
            sd = np.sqrt(np.maximum(second - mean**2, 0.0))
            return mean, mean - 2 * sd, mean + 2 * sd

        belief = slices(space, data.best_unit(), predict, history.objective, data)
        return {"kind": self.kind, "model": "Parzen-smoothed scores (mean, 2 sd band)", **belief}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.settings(), "quantile": self.quantile,
                "n_candidates": self.n_candidates}
