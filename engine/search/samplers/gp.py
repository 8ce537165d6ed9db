"""Bayesian optimisation with a Gaussian process: the ``gp`` sampler, for small budgets.

After a Sobol start (:class:`~engine.search.samplers.learning.LearningSampler`) each ask:

1. takes the results to learn from (the highest rung with enough of them), losses made more
   Gaussian by a Yeo-Johnson power transform and standardised (a few diverged runs at the worst
   value then do not flatten the model where the good trials are);
2. fits scikit-learn's ``GaussianProcessRegressor``: a constant times a Matérn-5/2 kernel with
   one length scale per input column, plus a white-noise term, every hyperparameter set by
   maximising the marginal likelihood (L-BFGS-B; two restarts while the fit's rows are at
   most ``RESTART_ROWS``), or with
   ``length_scale_prior=True`` times a log-normal prior on the length scales that prefers
   smooth functions while the results are few (:func:`length_scale_prior`).
   Inputs are the unit point, a Choice one-hot encoded (one column, and one length scale,
   per option). Past
   ``MAX_FIT`` results the hyperparameters are fitted on a random subset. They are refitted
   at every result up to ``REFIT_EVERY_RESULT`` results, then about eight times per doubling
   of the data (:func:`refit_size`: on the first results by trial number), and each fit is
   kept (a pure function of its data) until the next, so the asks and beliefs in between
   only condition on the newer results;
   the model conditions on every result up to ``MAX_CONDITION``, past that on the best half
   and the most recent of the others (:func:`conditioning_rows`);
   the model's constant prior mean is the targets' worst value (``prior_mean="pessimistic"``,
   the default: far from every result it predicts the worst one), or their mean (0) with
   ``prior_mean="mean"`` (:func:`prior_level`);
3. conditions on the pending trials as if they had returned the mean result (a constant liar:
   the model becomes sure there, so parallel workers are sent elsewhere);
4. maximises log expected improvement over the cube (Sobol candidates plus steps around the
   best points, then L-BFGS-B; :mod:`.acquisition`), or with ``trust_region=True`` inside
   TuRBO's box around the best result (:mod:`.region`), and returns the best point that is
   not already pending.

Deterministic for ``(settings, space, history, rng)``: the candidates are drawn from ``rng``,
and a hyperparameter fit's random choices (restarts, subset) from a generator seeded by its
data's size, so a fit kept from an earlier ask is the fit this ask would make.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

from engine.search.history import History
from engine.search.samplers import acquisition, region
from engine.search.samplers.learning import (
    LearningSampler,
    Observed,
    choice_columns,
    first_new,
    learnable,
    numeric_columns,
    observed,
    one_blas_thread,
    option_index,
    slices,
    snap,
)
from engine.search.scales import SpaceError
from engine.search.space import Space

MAX_FIT = 40  # results the hyperparameters are fitted on (a random subset past this)
MAX_ITER = 25  # L-BFGS-B iterations of a hyperparameter fit
REFIT_EVERY_RESULT = 32  # up to this many results, the hyperparameters are refitted at each
MAX_CONDITION = 256  # results the model conditions on (past this: best half, most recent half)
KEPT_FITS = 8  # hyperparameter fits a sampler keeps (a study asks and describes from one)
RESTART_ROWS = 20  # up to this many rows, a hyperparameter fit restarts twice; past it, never
_TINY = float(np.spacing(1.0))


def refit_size(n: int) -> int:
    """How many results the hyperparameters are fitted on when ``n`` are in: ``n`` up to
    ``REFIT_EVERY_RESULT``, then ``n`` rounded down to a step of an eighth of the power of two
    at or below it (32, 36, ..., 64, 72, ..., 128, 144, ..., 256, 288, ...): about eight fits
    per doubling of the data instead of one per result."""
    if n <= REFIT_EVERY_RESULT:
        return n
    step = (1 << (n.bit_length() - 1)) // 8
    return n - n % step


def conditioning_rows(losses: np.ndarray, numbers: np.ndarray,
                      cap: int | None = None) -> np.ndarray:
    """Rows (sorted indices) of the results a model conditions on: all of them while there are
    at most ``cap``; past that the ``cap // 2`` best (lowest loss, ties to the lower trial
    number) and the ``cap - cap // 2`` most recent of the others (highest trial numbers): the
    model stays sure where the good trials are and where the search went lately. ``cap``:
    ``MAX_CONDITION`` by default."""
    cap = MAX_CONDITION if cap is None else cap
    n = len(losses)
    if n <= cap:
        return np.arange(n)
    best = np.lexsort((numbers, losses))[: cap // 2]
    rest = np.setdiff1d(np.arange(n), best)
    recent = rest[np.argsort(-np.asarray(numbers)[rest], kind="stable")[: cap - cap // 2]]
    return np.sort(np.concatenate([best, recent]))


def encode(space: Space, units: np.ndarray) -> np.ndarray:
    """Model inputs ``(n, D)``: numeric unit coordinates, then one-hot columns per Choice."""
    units = np.asarray(units, dtype=np.float64).reshape(-1, space.n_dims)
    columns = [units[:, numeric_columns(space)]]
    for j, k in choice_columns(space):
        columns.append(np.eye(k)[option_index(units[:, j], k)])
    return np.concatenate(columns, axis=1)


def yeo_johnson(x: np.ndarray, lmbda: float) -> np.ndarray:
    """The Yeo-Johnson power transform of ``x`` ``(n,)`` with parameter ``lmbda``."""
    x = np.asarray(x, dtype=np.float64)
    out, pos = np.empty_like(x), x >= 0
    log_pos, log_neg = np.log1p(x[pos]), np.log1p(-x[~pos])
    out[pos] = log_pos if abs(lmbda) < _TINY else np.expm1(lmbda * log_pos) / lmbda
    out[~pos] = (-log_neg if abs(lmbda - 2) < _TINY
                 else -np.expm1((2 - lmbda) * log_neg) / (2 - lmbda))
    return out


def yeo_johnson_inverse(y: np.ndarray, lmbda: float) -> np.ndarray:
    """The inverse of :func:`yeo_johnson` (NaN where ``y`` is outside its range)."""
    y = np.asarray(y, dtype=np.float64)
    out, pos = np.empty_like(y), y >= 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out[pos] = (np.expm1(y[pos]) if abs(lmbda) < _TINY
                    else np.expm1(np.log1p(lmbda * y[pos]) / lmbda))
        out[~pos] = (-np.expm1(-y[~pos]) if abs(lmbda - 2) < _TINY
                     else -np.expm1(np.log1p(-(2 - lmbda) * y[~pos]) / (2 - lmbda)))
    return out


def yeo_johnson_lambda(x: np.ndarray) -> float:
    """The maximum-likelihood Yeo-Johnson parameter of ``x`` ``(n,)``: what scikit-learn's
    ``PowerTransformer`` (via ``scipy.stats.yeojohnson_normmax``) finds, with the same bounds
    and SciPy's same bounded optimiser, on a NumPy log-likelihood (SciPy's own costs about
    0.6 ms a call in input checks, 12 ms a fit: a tenth of a cold gp ask)."""
    from scipy.optimize import fminbound

    x = np.asarray(x, dtype=np.float64)
    if np.all(x == 0):
        return 1.0
    log1p_max = math.log1p(20 * float(np.max(np.abs(x))))
    eps = np.finfo(np.float64)
    low = (math.log(eps.tiny) - math.log(eps.eps)) / 2 / log1p_max
    high = (math.log(eps.max) + math.log(eps.eps)) / 2 / log1p_max
    if np.all(x < 0):
        low, high = 2 - high, 2 - low
    elif np.any(x < 0):
        low, high = max(2 - high, low), min(2 - low, high)
    jacobian = float(np.sum(np.sign(x) * np.log1p(np.abs(x))))

    def negative_llf(lmbda: float) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            var = float(np.var(yeo_johnson(x, lmbda)))
        if not np.isfinite(var) or var <= 0:
            return np.inf
        return 0.5 * len(x) * math.log(var) - (lmbda - 1) * jacobian

    return float(fminbound(negative_llf, low, high, xtol=1.48e-8))


class Warp:
    """Losses -> standardised, Yeo-Johnson-warped targets, and back (for the belief).
    ``offset``: subtracted from the standardised targets (0: the model's prior mean is their
    mean; see :func:`prior_level`)."""

    def __init__(self, losses: np.ndarray):
        losses = np.asarray(losses, dtype=np.float64)
        self.lmbda: float | None = None
        self.offset = 0.0
        self.mean, self.scale = float(np.mean(losses)), float(np.std(losses)) or 1.0
        self.low, self.high = float(np.min(losses)), float(np.max(losses))
        if np.ptp(losses) > 0:
            lmbda = yeo_johnson_lambda(losses)
            with np.errstate(over="ignore", invalid="ignore"):
                z = yeo_johnson(losses, lmbda)
                shift, scale = float(np.mean(z)), float(np.std(z))
            if np.all(np.isfinite(z)) and np.isfinite(scale) and scale > 0:
                self.lmbda, self.shift, self.spread = lmbda, shift, scale

    def __call__(self, losses: np.ndarray) -> np.ndarray:
        losses = np.asarray(losses, dtype=np.float64)
        if self.lmbda is None:
            return (losses - self.mean) / self.scale - self.offset
        with np.errstate(over="ignore", invalid="ignore"):
            return (yeo_johnson(losses, self.lmbda) - self.shift) / self.spread - self.offset

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Warped targets back to losses; values the power transform cannot invert (far beyond
        the data) become the nearest observed extreme."""
        y = np.asarray(y, dtype=np.float64) + self.offset
        if self.lmbda is None:
            return y * self.scale + self.mean
        out = yeo_johnson_inverse(y * self.spread + self.shift, self.lmbda)
        fallback = np.where(y > 0, self.high, self.low)
        return np.where(np.isfinite(out), out, fallback)


PRIOR_MEANS = ("mean", "pessimistic")  # GPSampler's prior_mean settings


def prior_level(targets: np.ndarray, prior_mean: str) -> float:
    """The model's constant prior mean on the standardised, warped ``targets`` ``(n,)``:
    ``"mean"``: their mean (0); ``"pessimistic"``: their worst (highest) value, so a region far
    from every result is predicted as bad as the worst one and expected improvement stays near
    the good results unless the model is unsure enough there (more exploitation: a small
    budget's choice)."""
    if prior_mean == "pessimistic" and len(targets):
        return float(np.max(targets))
    return 0.0


def _lbfgsb(max_iter: int, penalty=None):
    """An optimizer for GaussianProcessRegressor: L-BFGS-B with an iteration cap (the marginal
    likelihood's last digits do not change the proposal, and each step costs O(n^3)).
    ``penalty(theta) -> (value, gradient)``, added to the negative log marginal likelihood:
    a negative log prior (a MAP fit)."""

    def run(obj_func, initial_theta: np.ndarray, bounds: np.ndarray):
        from scipy.optimize import minimize

        def objective(theta):
            value, gradient = obj_func(theta, eval_gradient=True)
            if penalty is not None:
                extra, extra_gradient = penalty(theta)
                value, gradient = value + extra, gradient + extra_gradient
            return value, gradient

        result = minimize(objective, initial_theta, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": max_iter})
        return result.x, result.fun

    return run


def length_scale_prior(kernel, n_inputs: int):
    """The negative log of a log-normal prior on each length scale, ``log l ~ N(sqrt(2) +
    log(D) / 2, 3)`` for ``D`` inputs (Hvarfner et al., "Vanilla Bayesian optimization performs
    great in high dimensions", 2024): with few results the fit prefers smooth functions, so
    the axes that do not matter get long length scales rather than fitting noise."""
    names = [h.name for h in kernel.hyperparameters for _ in range(h.n_elements)]
    columns = np.array([name.endswith("length_scale") for name in names])
    mu, var = math.sqrt(2) + 0.5 * math.log(n_inputs), 3.0

    def penalty(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.where(columns, theta - mu, 0.0)
        return float(0.5 * np.sum(z * z) / var), z / var

    return penalty


def fit_kernel(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, prior: bool = False):
    """The kernel of a GaussianProcessRegressor on ``x (n, D)``, ``y (n,)`` with its
    hyperparameters fitted by marginal likelihood (on at most ``MAX_FIT`` rows drawn by
    ``rng``; restarts from random hyperparameters while the rows are few and a fit is cheap);
    ``prior``: a MAP fit with :func:`length_scale_prior`.

    Restarts (from random hyperparameters) only up to ``RESTART_ROWS`` rows: measured on 120
    fits of the benchmark's synthetic tasks, a restart gained more than 0.5 nats of marginal
    likelihood in 2 of the 40 fits on at most 20 rows and at most 0.03 nats in the 80 on 21-40,
    while each one costs as much as the fit (half of a cold ask with 100 results)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = (ConstantKernel(1.0, (1e-2, 1e2))
              * Matern(length_scale=np.full(x.shape[1], 0.5), length_scale_bounds=(1e-2, 1e2),
                       nu=2.5)
              + WhiteKernel(1e-2, (1e-6, 1.0)))
    fit_rows = np.arange(len(y))
    if len(y) > MAX_FIT:
        fit_rows = np.sort(rng.choice(len(y), MAX_FIT, replace=False))
    restarts = 2 if len(fit_rows) <= RESTART_ROWS else 0
    penalty = length_scale_prior(kernel, x.shape[1]) if prior else None
    gp = GaussianProcessRegressor(kernel, alpha=1e-10, optimizer=_lbfgsb(MAX_ITER, penalty),
                                  n_restarts_optimizer=restarts,
                                  random_state=int(rng.integers(2**31)))
    with warnings.catch_warnings():  # hyperparameters at a bound are fine here
        warnings.simplefilter("ignore")
        gp.fit(x[fit_rows], y[fit_rows])
    return gp.kernel_


def condition(kernel, x: np.ndarray, y: np.ndarray):
    """A GaussianProcessRegressor with ``kernel`` (hyperparameters kept) conditioned on ``x``,
    ``y``."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    return GaussianProcessRegressor(kernel, alpha=1e-10, optimizer=None).fit(x, y)


class GPSampler(LearningSampler):
    """Gaussian-process Bayesian optimisation with log expected improvement (module docstring).

    ``n_startup``: Sobol trials before the model is used; ``min_observations``: results a rung
    needs before the model learns from it (default ``max(4, d + 2)``); ``length_scale_prior``:
    fit the hyperparameters with a log-normal prior on the length scales
    (:func:`length_scale_prior`), else by marginal likelihood alone (the default: on the
    benchmark's mixed task the prior's long length scales hid the choice that matters);
    ``prior_mean``: the model's constant prior mean, ``"pessimistic"`` (the default: their
    worst value) or ``"mean"`` of the results (:func:`prior_level`); on the benchmark's six
    20-seed runs the pessimistic prior was at least as good as the mean at the full budget on
    every one, and beat Optuna's TPE on five (tied on the sixth), where the mean lost to TPE on
    crossing. ``trust_region``: maximise the acquisition only inside TuRBO's box around the
    best result (:mod:`.region`); off by default: measured at 2 x 20 seeds it was faster on
    crossing (median best 0.0584 and 0.0584 against 0.0617 and 0.0573; random's final result
    in 378 and 405 epochs against 446 and 418) but not better at the full budget on mixed
    (0.0554 and 0.0584 against 0.0552 and 0.0567), and on digits tied in median (0.0084)
    with a worse mean on seeds 100-119 (0.0095 against 0.0086)."""

    def __init__(self, n_startup: int = 10, min_observations: int | None = None,
                 length_scale_prior: bool = False, prior_mean: str = "pessimistic",
                 trust_region: bool = False):
        super().__init__(n_startup, min_observations)
        for name, value in (("length_scale_prior", length_scale_prior),
                            ("trust_region", trust_region)):
            if not isinstance(value, bool):
                raise SpaceError(f"{name} must be true or false, got {name}={value!r}")
        if not isinstance(prior_mean, str) or prior_mean not in PRIOR_MEANS:
            raise SpaceError(f"prior_mean must be one of {', '.join(PRIOR_MEANS)}, got "
                             f"prior_mean={prior_mean!r}")
        self.length_scale_prior = length_scale_prior
        self.prior_mean = prior_mean
        self.trust_region = trust_region

    kind = "gp"
    summary = ("Bayesian optimisation with a Gaussian process: the most from a small budget "
               "(up to a few hundred trials) of expensive trials")

    def kernel(self, space: Space, data: Observed):
        """The fitted kernel for ``data``: fitted on its first ``refit_size(n)`` results by
        trial number (losses warped among themselves), kept for the next asks (the same data
        give the same fit: its generator is seeded by the data's size)."""
        first = np.argsort(data.numbers, kind="stable")[: refit_size(data.n)]
        x, losses = encode(space, data.units[first]), data.losses[first]
        key = hashlib.sha256(np.asarray(x.shape).tobytes() + x.tobytes()
                             + losses.tobytes()).hexdigest()
        kept = self.__dict__.setdefault("_kernels", OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        kernel = fit_kernel(x, Warp(losses)(losses), np.random.default_rng([len(first), 0x6F17]),
                            self.length_scale_prior)
        kept[key] = kernel
        while len(kept) > KEPT_FITS:
            kept.popitem(last=False)
        return kernel

    def model(self, space: Space, data: Observed):
        """``(gp conditioned on results and lies, warp, best warped loss)``; the results are
        ``conditioning_rows`` of ``data``, their warped targets relative to the prior mean
        (``warp.offset``: the kernel is fitted as for ``prior_mean="mean"``)."""
        rows = conditioning_rows(data.losses, data.numbers)
        warp = Warp(data.losses[rows])
        y = warp(data.losses[rows])
        warp.offset = prior_level(y, self.prior_mean)
        y = y - warp.offset
        x = encode(space, data.units[rows])
        if len(data.pending):
            x = np.concatenate([x, encode(space, data.pending)])
            y_all = np.concatenate([y, np.full(len(data.pending), float(np.mean(y)))])
        else:
            y_all = y
        return condition(self.kernel(space, data), x, y_all), warp, float(np.min(y))

    def _propose(self, space: Space, data: Observed, rng: np.random.Generator) -> np.ndarray:
        gp, _, best = self.model(space, data)

        def log_ei(units: np.ndarray) -> np.ndarray:
            mean, std = gp.predict(encode(space, units), return_std=True)
            return acquisition.log_expected_improvement(mean, std, best)

        order = np.argsort(data.losses, kind="stable")[: max(1, min(5, data.n // 4))]
        bounds = self.region(space, data, gp) if self.trust_region else None
        start = snap(space, acquisition.candidates(data.units[order], space.n_dims, rng,
                                                   bounds=bounds))
        points, _ = acquisition.maximise(log_ei, start, numeric_columns(space), bounds=bounds)
        return first_new(snap(space, points[:16]), data.pending)

    def region(self, space: Space, data: Observed, gp) -> tuple[np.ndarray, np.ndarray]:
        """The trust region's box (:mod:`.region`): around the best result, sides from the
        numeric columns' length scales (the encoding puts them first)."""
        numeric = numeric_columns(space)
        scales = np.atleast_1d(gp.kernel_.k1.k2.length_scale)[: len(numeric)]
        base = region.side(data.losses, data.numbers, self.n_startup, space.n_dims)
        return region.box(data.best_unit(), numeric, scales, base)

    def describe(self, space: Space, history: History) -> dict | None:
        data = observed(space, history, self.needed(space))
        if not learnable(space) or data.n < self.needed(space):
            return None
        with one_blas_thread():
            gp, warp, _ = self.model(space, data)

        def predict(units: np.ndarray, _axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mean, std = gp.predict(encode(space, units), return_std=True)
            return warp.inverse(mean), warp.inverse(mean - 2 * std), warp.inverse(mean + 2 * std)

        belief = slices(space, data.best_unit(), predict, history.objective, data)
        return {"kind": self.kind, "model": "gaussian process (mean, 2 sd band)", **belief}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.settings(),
                "length_scale_prior": self.length_scale_prior, "prior_mean": self.prior_mean,
                "trust_region": self.trust_region}

