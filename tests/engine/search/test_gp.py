"""The gp sampler's cost rules: the results it conditions on past ``MAX_CONDITION`` (the best half
and the most recent others), and hyperparameters refitted on a schedule and kept in between,
without changing what it asks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine.search import Float, History, Objective, Space, SpaceError, ask_rng
from engine.search.samplers import GPSampler
from engine.search.samplers import gp as gp_module
from engine.search.samplers.learning import observed
from tests.engine.search.helpers import record

SPACE = Space({"learning_rate": Float(1e-5, 1.0, "log"), "dropout": Float(0.0, 0.9),
               "momentum": Float(0.0, 0.99)})


def random_history(n: int, finished: int | None = None, seed: int = 0) -> History:
    """``n`` trials at random points scored by a bowl; only the first ``finished`` (default
    all) have their result, the others are running."""
    rng = np.random.default_rng(seed)
    finished = n if finished is None else finished
    history = History(objective=Objective("val_loss"), seed=seed)
    for k in range(n):
        u = rng.random(SPACE.n_dims)
        score = {1: float(np.sum((u - 0.3) ** 2))} if k < finished else None
        history = record(history, SPACE, u, score)
    return history


def test_conditioning_rows_are_the_best_half_and_the_most_recent_others() -> None:
    losses = np.array([5.0, 1.0, 7.0, 1.0, 9.0, 2.0, 8.0, 6.0, 3.0, 4.0])
    numbers = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(gp_module.conditioning_rows(losses, numbers, cap=10),
                                  np.arange(10))  # up to the cap: every result
    rows = gp_module.conditioning_rows(losses, numbers, cap=6)
    # best 3: rows 1, 3 (loss 1; ties in number order) and 5 (loss 2); then the 3 most recent
    # of the others: trials 9, 8, 7
    np.testing.assert_array_equal(rows, [1, 3, 5, 7, 8, 9])
    shuffled = np.array([3, 9, 0, 1, 7, 2, 4, 8, 5, 6])  # recency is the trial number
    rows = gp_module.conditioning_rows(losses, shuffled, cap=6)
    # best: rows 3 and 1 (loss 1), 5 (loss 2); most recent of the rest: trials 8, 7, 6
    np.testing.assert_array_equal(rows, [1, 3, 4, 5, 7, 9])


def test_the_model_conditions_on_at_most_max_condition_results(monkeypatch) -> None:
    monkeypatch.setattr(gp_module, "MAX_CONDITION", 20)
    history = random_history(52, finished=50)  # and 2 pending
    data = observed(SPACE, history, 4)
    gp, _, best = GPSampler().model(SPACE, data)
    rows = gp_module.conditioning_rows(data.losses, data.numbers)
    assert len(rows) == 20 and gp.X_train_.shape == (22, SPACE.n_dims)
    expected = np.concatenate([data.units[rows], data.pending])
    np.testing.assert_array_equal(gp.X_train_, expected)
    assert np.argmin(data.losses) in rows  # the best result is always among them
    point = GPSampler().ask(SPACE, history, ask_rng(0, history.number))
    assert point.shape == (SPACE.n_dims,)


def test_refit_sizes() -> None:
    sizes = {n: gp_module.refit_size(n) for n in (5, 32, 33, 35, 36, 63, 64, 71, 72, 100, 500)}
    assert sizes == {5: 5, 32: 32, 33: 32, 35: 32, 36: 36, 63: 60, 64: 64, 71: 64, 72: 72,
                     100: 96, 500: 480}


def test_hyperparameters_are_fitted_on_the_first_results_and_kept_until_the_next_refit() -> None:
    sampler = GPSampler()
    thetas = {}
    for finished in (96, 100, 103, 104):
        history = random_history(110, finished=finished)
        thetas[finished] = sampler.kernel(SPACE, observed(SPACE, history, 4)).theta
    np.testing.assert_array_equal(thetas[100], thetas[96])  # refit_size(100) == 96
    np.testing.assert_array_equal(thetas[103], thetas[96])
    assert not np.array_equal(thetas[104], thetas[96])  # 104: a new fit
    # the kept fit is the one a new sampler makes from the first 96 results alone
    fresh = GPSampler().kernel(SPACE, observed(SPACE, random_history(110, finished=96), 4))
    np.testing.assert_array_equal(fresh.theta, thetas[100])


def test_a_kept_fit_does_not_change_what_is_asked() -> None:
    history = random_history(44, finished=40)
    warmed = GPSampler()
    for finished in (33, 36, 38):  # fits kept from earlier asks of the same study
        earlier = random_history(44, finished=finished)
        warmed.ask(SPACE, earlier, ask_rng(0, earlier.number))
    asked = warmed.ask(SPACE, history, ask_rng(0, history.number))
    np.testing.assert_array_equal(asked, GPSampler().ask(SPACE, history,
                                                          ask_rng(0, history.number)))
    belief = GPSampler().describe(SPACE, history)
    assert belief == warmed.describe(SPACE, history)


def test_the_length_scale_prior_is_a_log_normal_on_the_length_scales_only() -> None:
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel() * Matern(length_scale=np.ones(4)) + WhiteKernel()
    penalty = gp_module.length_scale_prior(kernel, 4)
    mu, var = np.sqrt(2) + 0.5 * np.log(4), 3.0
    theta = np.array([0.3, mu, mu - 1.0, mu + 2.0, -5.0, -3.0])  # constant, 4 scales, noise
    value, gradient = penalty(theta)
    z = theta[1:5] - mu
    assert value == pytest.approx(0.5 * np.sum(z * z) / var)
    np.testing.assert_allclose(gradient, [0.0, *(z / var), 0.0])


def test_the_prior_is_a_setting_that_changes_the_fit() -> None:
    data = observed(SPACE, random_history(12), 4)
    with_prior = GPSampler(length_scale_prior=True).kernel(SPACE, data)
    without = GPSampler().kernel(SPACE, data)
    assert not np.allclose(with_prior.theta, without.theta)
    assert GPSampler().to_dict()["length_scale_prior"] is False
    with pytest.raises(SpaceError, match="length_scale_prior must be true or false, got "
                                         "length_scale_prior='yes'"):
        GPSampler(length_scale_prior="yes")


@pytest.mark.parametrize("rows, runs", [(12, 3), (20, 3), (21, 1), (40, 1), (100, 1)])
def test_a_fit_restarts_only_while_its_rows_are_few(monkeypatch, rows, runs) -> None:
    """Restarts pay while a fit has few rows; past ``RESTART_ROWS`` a fit is one L-BFGS-B run
    (a restart then costs as much as the fit and was measured to gain nothing)."""
    calls = []
    real = gp_module._lbfgsb

    def counting(max_iter, penalty=None):
        run = real(max_iter, penalty)

        def counted(*args, **kwargs):
            calls.append(1)
            return run(*args, **kwargs)

        return counted

    monkeypatch.setattr(gp_module, "_lbfgsb", counting)
    rng = np.random.default_rng(3)
    x = rng.random((rows, 3))
    gp_module.fit_kernel(x, np.sum((x - 0.4) ** 2, axis=1), rng)
    assert len(calls) == runs


@pytest.mark.parametrize("kind", ["uniform", "skewed", "diverged", "negative", "two values"])
def test_the_warp_is_scikit_learns_yeo_johnson_power_transform(kind) -> None:
    from sklearn.preprocessing import PowerTransformer

    rng = np.random.default_rng(5)
    losses = {"uniform": rng.random(60), "skewed": rng.lognormal(-3.0, 1.0, 80),
              "diverged": np.r_[0.05 + 0.1 * rng.random(30), [1.0, 1.0, 1.0]],
              "negative": -rng.random(25), "two values": np.array([0.2, 0.2, 0.7])}[kind]
    reference = PowerTransformer(method="yeo-johnson", standardize=True).fit(losses[:, None])
    warp = gp_module.Warp(losses)
    np.testing.assert_allclose(warp(losses), reference.transform(losses[:, None])[:, 0],
                               atol=1e-8)
    y = np.linspace(-2.0, 2.0, 21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN where y is outside the transform's range
        expected = reference.inverse_transform(y[:, None])[:, 0]
    inside = np.isfinite(expected)
    np.testing.assert_allclose(warp.inverse(y)[inside], expected[inside], atol=1e-8)
    # outside: the nearest observed extreme
    np.testing.assert_array_equal(warp.inverse(y)[~inside],
                                  np.where(y[~inside] > 0, losses.max(), losses.min()))
    np.testing.assert_allclose(warp.inverse(warp(losses)), losses, atol=1e-10)


def test_a_constant_loss_warps_to_zero_and_back() -> None:
    warp = gp_module.Warp(np.full(5, 0.3))
    np.testing.assert_array_equal(warp(np.full(5, 0.3)), np.zeros(5))
    np.testing.assert_allclose(warp.inverse(np.array([0.0])), [0.3])


def corner_history(seed: int = 1) -> History:
    """12 results in the corner ``[0, 0.3]^3`` of the cube (a bowl around 0.1)."""
    rng = np.random.default_rng(seed)
    history = History(objective=Objective("val_loss"), seed=seed)
    for _ in range(12):
        u = 0.3 * rng.random(SPACE.n_dims)
        history = record(history, SPACE, u, {1: float(np.sum((u - 0.1) ** 2))})
    return history


def test_a_pessimistic_prior_mean_predicts_the_worst_result_far_from_the_data() -> None:
    """Far from every result the model falls back to its prior mean: with ``prior_mean=
    "pessimistic"`` (the default) the worst result, with ``"mean"`` the results' middle (the
    warped mean)."""
    data = observed(SPACE, corner_history(), 4)
    far = np.ones((1, SPACE.n_dims))  # the opposite corner, far beyond the length scales
    predicted = {}
    for setting in ("mean", "pessimistic"):
        gp, warp, best = GPSampler(prior_mean=setting).model(SPACE, data)
        predicted[setting] = float(warp.inverse(gp.predict(gp_module.encode(SPACE, far)))[0])
        assert best == pytest.approx(float(np.min(warp(data.losses))))  # the best, warped
    worst, middle = float(np.max(data.losses)), float(np.median(data.losses))
    assert predicted["pessimistic"] == pytest.approx(worst, rel=0.02)
    assert predicted["mean"] < worst - 0.5 * (worst - middle)
    # what the warp does to the results is the same: only their level against the prior moves
    plain, _, _ = GPSampler(prior_mean="mean").model(SPACE, data)
    shifted, _, _ = GPSampler(prior_mean="pessimistic").model(SPACE, data)
    np.testing.assert_array_equal(plain.kernel_.theta, shifted.kernel_.theta)
    offset = plain.y_train_ - shifted.y_train_
    np.testing.assert_allclose(offset, offset[0])
    assert offset[0] > 0


def test_the_prior_mean_is_a_validated_setting_that_round_trips() -> None:
    from engine.search import sampler_from_dict

    assert GPSampler().to_dict()["prior_mean"] == "pessimistic"  # the default
    stored = GPSampler(prior_mean="mean").to_dict()
    assert stored["prior_mean"] == "mean"
    assert sampler_from_dict(stored).to_dict() == stored
    bare = {k: v for k, v in stored.items() if k != "prior_mean"}
    assert sampler_from_dict(bare).prior_mean == "pessimistic"
    for bad in ("optimistic", 0.9, None):
        with pytest.raises(SpaceError, match="prior_mean must be one of mean, pessimistic, "
                                             f"got prior_mean={bad!r}"):
            sampler_from_dict({"kind": "gp", "prior_mean": bad})


def test_a_pessimistic_prior_asks_nearer_the_best_result() -> None:
    history = corner_history()
    best = observed(SPACE, history, 4).best_unit()
    distance = {}
    for setting in ("mean", "pessimistic"):
        point = GPSampler(prior_mean=setting).ask(SPACE, history, ask_rng(0, history.number))
        distance[setting] = float(np.linalg.norm(point - best))
    assert distance["pessimistic"] < distance["mean"]
