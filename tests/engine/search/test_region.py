"""The gp sampler's trust region (``trust_region=True``): TuRBO's side rule, replayed from the
results, and a box shaped by the length scales."""

from __future__ import annotations

import numpy as np
import pytest

from engine.search import Choice, Float, History, Objective, Space, SpaceError, ask_rng
from engine.search.samplers import GPSampler, region, sampler_from_dict
from engine.search.samplers.learning import observed
from tests.engine.search.helpers import record


def side_after(losses: list[float], n_start: int = 2, n_dims: int = 2) -> float:
    return region.side(np.array(losses), np.arange(len(losses)), n_start, n_dims)


def test_the_side_doubles_after_three_improvements_and_halves_after_max_4_d_failures() -> None:
    assert side_after([5.0, 4.0]) == region.SIDE_INIT  # only the start: nothing to judge
    assert side_after([5.0, 4.0, 3.0, 2.0]) == region.SIDE_INIT  # two improvements
    assert side_after([5.0, 4.0, 3.0, 2.0, 1.0]) == 2 * region.SIDE_INIT
    # doubling stops at SIDE_MAX (0.8 -> 1.6 -> 1.6)
    assert side_after([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]) == region.SIDE_MAX
    assert side_after([1.0, 2.0, 3.0, 3.0, 3.0]) == region.SIDE_INIT  # 3 failures of 4
    assert side_after([1.0, 2.0, 3.0, 3.0, 3.0, 3.0]) == region.SIDE_INIT / 2
    # in 6 dimensions a halving takes 6 failures in a row, and an improvement resets them
    assert side_after([1.0, 2.0, *[3.0] * 5], n_dims=6) == region.SIDE_INIT
    assert side_after([1.0, 2.0, *[3.0] * 6], n_dims=6) == region.SIDE_INIT / 2
    assert side_after([1.0, 2.0, 3.0, 3.0, 3.0, 0.5, 3.0, 3.0, 3.0]) == region.SIDE_INIT
    # the seventh halving would go below SIDE_MIN (0.8 / 128 < 1 / 128): the side starts again
    assert side_after([1.0, 2.0, *[3.0] * 24]) == region.SIDE_INIT / 2**6
    assert side_after([1.0, 2.0, *[3.0] * 28]) == region.SIDE_INIT


def test_the_side_is_replayed_in_trial_number_order() -> None:
    losses = np.array([1.0, 2.0, 3.0, 3.0, 3.0, 3.0])
    numbers = np.array([5, 4, 3, 2, 1, 0])  # by number: 3, 3, 3, 3, 2, 1: improvements last
    assert region.side(losses, np.arange(6), 2, 2) == region.SIDE_INIT / 2
    assert region.side(losses, numbers, 2, 2) == region.SIDE_INIT


def test_a_tiny_change_is_not_an_improvement() -> None:
    # 1e-4 of the losses' range below the best is noise: three of them still fail
    tiny = [1.0, 2.0, 1.0 - 1e-4, 1.0 - 2e-4, 1.0 - 3e-4, 1.0 - 4e-4]
    assert side_after(tiny) == region.SIDE_INIT / 2


def test_the_box_follows_the_length_scales_and_keeps_choices_whole() -> None:
    centre = np.array([0.5, 0.9, 0.3])
    low, high = region.box(centre, [0, 1], np.array([0.1, 0.4]), 0.8)
    # weights 0.1 / 0.2 = 0.5 and 0.4 / 0.2 = 2 (geometric mean 0.2): sides 0.4 and 1.6
    np.testing.assert_allclose(low, [0.3, 0.1, 0.0])
    np.testing.assert_allclose(high, [0.7, 1.0, 1.0])  # clipped to the cube; a Choice: all
    # a flat axis counts as LONGEST: six at the fit's bound do not squeeze the two that matter
    low, high = region.box(np.full(8, 0.5), list(range(8)), np.array([0.2, 0.2, *[100.0] * 6]),
                           0.8)
    geometric = np.exp(np.mean(np.log([0.2, 0.2, *[region.LONGEST] * 6])))
    np.testing.assert_allclose(high[:2] - low[:2], 0.8 * 0.2 / geometric)
    assert high[:2][0] - low[:2][0] > 0.1


SPACE = Space({"learning_rate": Float(1e-5, 1.0, "log"), "dropout": Float(0.0, 0.9),
               "optimizer": Choice(["sgd", "adam", "rmsprop"])})


def bowl_history(n: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    history = History(objective=Objective("val_loss"), seed=seed)
    for _ in range(n):
        u = rng.random(SPACE.n_dims)
        history = record(history, SPACE, u, {1: float(np.sum((u[:2] - 0.3) ** 2))})
    return history


def test_a_trust_region_gp_asks_inside_its_box() -> None:
    history = bowl_history(30)
    sampler = GPSampler(trust_region=True)
    data = observed(SPACE, history, sampler.needed(SPACE))
    gp, _, _ = sampler.model(SPACE, data)
    low, high = sampler.region(SPACE, data, gp)
    assert np.all(high[:2] - low[:2] < 1.0) and low[2] == 0.0 and high[2] == 1.0
    point = sampler.ask(SPACE, history, ask_rng(0, history.number))
    assert np.all(point[:2] >= low[:2] - 1e-12) and np.all(point[:2] <= high[:2] + 1e-12)
    assert not np.array_equal(point, GPSampler().ask(SPACE, history, ask_rng(0, history.number)))


def test_the_trust_region_is_a_validated_setting_that_round_trips() -> None:
    assert GPSampler().to_dict()["trust_region"] is False
    stored = GPSampler(trust_region=True).to_dict()
    assert sampler_from_dict(stored).trust_region is True
    with pytest.raises(SpaceError, match="trust_region must be true or false, got "
                                         "trust_region=1"):
        GPSampler(trust_region=1)
