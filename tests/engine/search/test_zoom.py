"""The zoom sampler: rounds whose boxes shrink around the best trials, below half the width
when it zooms again, with some exploration of the whole space and a floor on the box size."""

from __future__ import annotations

import numpy as np
import pytest

from engine.search import Choice, Float, History, Objective, Space, ask_rng
from engine.search.samplers import ZoomSampler
from tests.engine.search.helpers import record, run

SPACE = Space({"learning_rate": Float(1e-5, 1.0, "log"), "dropout": Float(0.0, 0.9),
               "momentum": Float(0.0, 0.99)})
TARGET = np.array([0.83, 0.2, 0.5])


def loss(u: np.ndarray) -> float:
    return float(np.sum((u[:2] - TARGET[:2]) ** 2))  # momentum does not matter


def boxes(sampler: ZoomSampler, history: History) -> list[dict]:
    return sampler.describe(SPACE, history)["rounds"]


def test_rounds_and_their_widths() -> None:
    sampler = ZoomSampler(first_round=8, round_size=4, shrink=0.5, min_width=0.1)
    assert [sampler.round_of(k) for k in (0, 7, 8, 11, 12)] == [(0, 0), (0, 7), (1, 0), (1, 3),
                                                                 (2, 0)]
    assert [sampler.width(r) for r in range(5)] == [1.0, 0.5, 0.25, 0.125, 0.1]


def test_each_zoom_goes_below_half_of_the_last_box_and_keeps_the_best_inside() -> None:
    sampler = ZoomSampler(first_round=8, round_size=4, explore=0.0, min_width=0.01)
    history = run(sampler, SPACE, loss, 8 + 4 * 4, seed=3)
    rounds = boxes(sampler, history)
    assert [r["round"] for r in rounds] == [0, 1, 2, 3, 4]
    assert [r["first_trial"] for r in rounds] == [0, 8, 12, 16, 20]
    widths = [np.array([hi - lo for lo, hi in r["box"]["unit"].values()]) for r in rounds]
    for before, after in zip(widths, widths[1:]):
        assert np.all(after <= 0.5 * before + 1e-12)
    for r in rounds[1:]:
        low, high = (np.array(side) for side in zip(*r["box"]["unit"].values()))
        known = history.trials[: r["first_trial"]]
        best = min(known, key=lambda t: t.scores[1]).point()
        assert np.all((low <= best) & (best <= high)) and np.all((low >= 0) & (high <= 1))
        inside = [t.point() for t in history.trials[r["first_trial"]: r["first_trial"] + 4]]
        assert all(np.all((low - 1e-12 <= u) & (u <= high + 1e-12)) for u in inside)
    last = rounds[-1]["box"]["unit"]
    assert last["learning_rate"][0] <= TARGET[0] <= last["learning_rate"][1]


def test_the_box_size_has_a_floor() -> None:
    sampler = ZoomSampler(first_round=6, round_size=2, explore=0.0, min_width=0.2)
    history = run(sampler, SPACE, loss, 6 + 2 * 6, seed=1)
    last = boxes(sampler, history)[-1]["box"]["unit"]
    assert all(hi - lo == pytest.approx(0.2) for lo, hi in last.values())


def test_exploration_samples_the_whole_space_and_can_move_the_box() -> None:
    sampler = ZoomSampler(first_round=8, round_size=10, explore=0.3, min_width=0.05)
    history = run(sampler, SPACE, loss, 8 + 10 * 6, seed=0)
    rounds = boxes(sampler, history)
    outside = 0
    for r in rounds[2:]:
        low, high = (np.array(side) for side in zip(*r["box"]["unit"].values()))
        for t in history.trials[r["first_trial"]: r["first_trial"] + 10]:
            outside += not np.all((low - 1e-12 <= t.point()) & (t.point() <= high + 1e-12))
    assert 5 <= outside <= 40  # about 30% of 50 trials, far from the small boxes
    # a trial far from the first box that turns out best moves the next box onto it
    far = np.array([0.05, 0.95, 0.5])
    moved = record(history, SPACE, far, {1: -1.0})
    for _ in range(10):  # the rest of this round, then the first trial of the next
        u = sampler.ask(SPACE, moved, ask_rng(0, moved.number))
        moved = record(moved, SPACE, u, {1: loss(u)})
    box = boxes(sampler, moved)[-1]["box"]["unit"]
    assert box["learning_rate"][0] <= 0.05 <= box["learning_rate"][1]


OPTIMIZERS = ["sgd", "momentum", "rmsprop", "adam"]


def test_boxes_read_the_objective_and_keep_every_choice_option() -> None:
    """A Choice's options have no order: a box along its unit axis would keep a contiguous run
    of neighbours (here rmsprop and adam, dropping sgd, which did as well as adam). A round's
    box keeps every option; only the numbers narrow."""
    space = Space({"learning_rate": Float(1e-5, 1.0, "log"),
                   "optimizer": Choice(OPTIMIZERS)})
    sampler = ZoomSampler(first_round=12, round_size=8, explore=0.0)
    rng = np.random.default_rng(0)
    history = History(objective=Objective("val_acc"), seed=0)
    for _ in range(12):  # sgd and adam (the first and the last option) both do well
        u = rng.random(2)
        good = space.params["optimizer"].from_unit(u[1]) in ("sgd", "adam")
        history = record(history, space, u, {1: float(good) - (u[0] - 0.5) ** 2})
    assert len(sampler.describe(space, history)["rounds"]) == 1  # round 1 has not begun
    asked = []
    for _ in range(8):  # round 1, half the width on the numbers
        u = sampler.ask(space, history, ask_rng(0, history.number))
        asked.append(space.params_from_unit(u)["optimizer"])
        history = record(history, space, u)
    box = sampler.describe(space, history)["rounds"][1]["box"]
    assert box["values"]["optimizer"] == OPTIMIZERS and box["unit"]["optimizer"] == [0.0, 1.0]
    low, high = box["unit"]["learning_rate"]
    assert high - low == pytest.approx(0.5)  # the numbers narrow
    assert {"sgd", "adam"} <= set(asked)  # both options that did well are sampled again


def test_without_results_a_round_samples_the_whole_space() -> None:
    sampler = ZoomSampler(first_round=4, round_size=4)
    history = History(seed=2)
    for _ in range(8):  # every trial still running
        history = record(history, SPACE, sampler.ask(SPACE, history, ask_rng(2, history.number)))
    rounds = boxes(sampler, history)
    assert rounds[1]["box"] is None and len(rounds) == 2
