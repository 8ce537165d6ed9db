"""Log expected improvement and its maximisation over the cube."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from engine.search.samplers.acquisition import (
    candidates,
    log_expected_improvement,
    log_h,
    maximise,
)


def test_log_h_matches_the_plain_formula_where_that_is_accurate() -> None:
    z = np.linspace(-8, 8, 161)
    plain = np.log(z * stats.norm.cdf(z) + stats.norm.pdf(z))
    np.testing.assert_allclose(log_h(z), plain, rtol=1e-9, atol=1e-12)


def test_log_h_far_below_the_incumbent_is_finite_and_follows_the_asymptote() -> None:
    z = -np.logspace(1, 150, 50)  # z**2 itself overflows past 1e154
    values = log_h(z)
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) < 0)  # further below: less improvement expected
    # h(z) ~ phi(z) / z**2 for z -> -inf
    asymptote = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-z)
    np.testing.assert_allclose(values[z < -1e4], asymptote[z < -1e4], rtol=1e-12)
    # in the middle branch, against the integral definition E[max(z - x, 0)], x ~ N(0, 1)
    for zi in (-3.0, -12.0, -30.0):
        ei, _ = integrate.quad(lambda x, zi=zi: (zi - x) * stats.norm.pdf(x), -np.inf, zi,
                               epsabs=0, epsrel=1e-12, limit=200)
        assert math.isclose(float(log_h(np.array([zi]))[0]), math.log(ei), rel_tol=1e-6)


@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e3), st.floats(-1e6, 1e6))
def test_log_ei_is_the_log_of_expected_improvement(mean, std, best) -> None:
    value = log_expected_improvement(np.array([mean]), np.array([std]), best)[0]
    assert math.isfinite(value)
    z = (best - mean) / std
    if z > -20:
        direct = std * (z * stats.norm.cdf(z) + stats.norm.pdf(z))
        assert math.isclose(value, math.log(direct), rel_tol=1e-6, abs_tol=1e-9)


def test_log_ei_prefers_lower_means_and_wider_bands() -> None:
    means = np.array([0.0, -1.0, 0.0])
    stds = np.array([1.0, 1.0, 2.0])
    values = log_expected_improvement(means, stds, best=-0.5)
    assert values[1] > values[0] and values[2] > values[0]


def test_maximise_finds_the_peak_of_a_smooth_function() -> None:
    rng = np.random.default_rng(0)
    target = np.array([0.31, 0.77, 0.5])

    def bump(units: np.ndarray) -> np.ndarray:
        return -np.sum((units - target) ** 2, axis=1)

    start = candidates(np.zeros((0, 3)), 3, rng, n_sobol=64)
    points, values = maximise(bump, start, numeric=[0, 1, 2])
    assert np.all(np.diff(values) <= 0)  # best first
    np.testing.assert_allclose(points[0], target, atol=1e-3)
    frozen, _ = maximise(bump, start, numeric=[0, 1])  # column 2 stays where a start had it
    assert frozen[0, 2] in start[:, 2]


def test_candidates_stay_in_the_cube_around_the_best() -> None:
    rng = np.random.default_rng(1)
    best = np.array([[0.0, 1.0], [0.5, 0.5]])
    points = candidates(best, 2, rng, n_sobol=32, n_local=100)
    assert points.shape == (132, 2)
    assert np.all((points >= 0) & (points <= 1))
    local = points[32:]
    near = np.min(np.linalg.norm(local[:, None] - best[None], axis=2), axis=1)
    assert np.median(near) < 0.1


def test_candidates_and_refinement_stay_in_a_box_when_given_one() -> None:
    rng = np.random.default_rng(2)
    low, high = np.array([0.2, 0.0, 0.6]), np.array([0.4, 1.0, 0.9])
    points = candidates(np.array([[0.3, 0.5, 0.95]]), 3, rng, n_sobol=64, n_local=64,
                        bounds=(low, high))
    assert np.all((points >= low) & (points <= high))
    target = np.array([0.31, 0.77, 0.5])  # column 2's peak is outside the box: its edge wins

    def bump(units: np.ndarray) -> np.ndarray:
        return -np.sum((units - target) ** 2, axis=1)

    best, _ = maximise(bump, points, numeric=[0, 1, 2], bounds=(low, high))
    assert np.all((best >= low) & (best <= high))
    np.testing.assert_allclose(best[0], [0.31, 0.77, 0.6], atol=1e-3)
