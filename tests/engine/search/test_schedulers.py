"""Schedulers: rungs, milestones, ASHA decisions on a hand-made example, JSON round trip."""

from __future__ import annotations

import json

import pytest

from engine.search import (
    ASHA,
    FullBudget,
    SchedulerError,
    SpaceError,
    SuccessiveHalving,
    scheduler_from_dict,
)


@pytest.mark.parametrize(
    ("args", "rungs"),
    [
        ((1, 27, 3), (1, 3, 9, 27)),
        ((2, 20, 3), (2, 6, 18, 20)),
        ((1, 10, 2), (1, 2, 4, 8, 10)),
        ((5, 5, 2), (5,)),
    ],
)
def test_rungs(args: tuple, rungs: tuple) -> None:
    assert SuccessiveHalving(*args).rungs == rungs


def test_next_milestone() -> None:
    asha = SuccessiveHalving(min_epochs=1, max_epochs=9, eta=3)
    assert [asha.next_milestone(done) for done in range(9)] == [1, 3, 3, 9, 9, 9, 9, 9, 9]
    with pytest.raises(SchedulerError, match=r"epochs_done=9 already reached max_epochs=9"):
        asha.next_milestone(9)
    full = FullBudget(10)
    assert full.next_milestone(0) == full.next_milestone(7) == 10


def test_asha_hand_made_example() -> None:
    asha = SuccessiveHalving(min_epochs=1, max_epochs=9, eta=3)
    rung1: dict[str, float] = {}
    expected = [
        ("t0", 0.50, "continue"),  # alone at the rung: the best so far goes on
        ("t1", 0.40, "prune"),  # 2 trials: top max(1, 2 // 3) = 1 is t0
        ("t2", 0.70, "continue"),
        ("t3", 0.60, "prune"),
        ("t4", 0.55, "prune"),
        ("t5", 0.65, "continue"),  # 6 trials: the top 2 are 0.70 and 0.65
        ("t6", 0.62, "prune"),
    ]
    for trial_id, score, decision in expected:
        assert asha.decide(trial_id, 1, score, rung1) == decision, trial_id
        rung1[trial_id] = score
    rung3: dict[str, float] = {}
    for trial_id, score, decision in [
        ("t0", 0.6, "continue"),
        ("t2", 0.8, "continue"),
        ("t5", 0.7, "prune"),
    ]:
        assert asha.decide(trial_id, 3, score, rung3) == decision, trial_id
        rung3[trial_id] = score
    assert asha.decide("t2", 9, 0.85, {}) == "complete"
    assert asha.decide("t0", 2, 0.1, rung1) == "continue"  # not a rung: no decision


def test_asha_minimizing_a_loss() -> None:
    asha = ASHA(min_epochs=2, max_epochs=8, eta=2, maximize=False)
    assert asha.decide("a", 2, 1.0, {}) == "continue"
    assert asha.decide("b", 2, 2.0, {"a": 1.0}) == "prune"
    assert asha.decide("c", 2, 0.5, {"a": 1.0, "b": 2.0}) == "continue"
    # the asking trial's own earlier entry is replaced, not counted twice
    assert asha.decide("a", 2, 1.5, {"a": 1.0, "b": 2.0, "c": 0.5, "d": 3.0}) == "continue"


def test_asha_non_finite_scores() -> None:
    asha = SuccessiveHalving(1, 9, 3)
    assert asha.decide("x", 1, float("nan"), {}) == "prune"
    assert asha.decide("y", 1, 0.2, {"x": float("nan")}) == "continue"


def test_full_budget() -> None:
    full = FullBudget(10)
    assert full.rungs == (10,) and full.max_epochs == 10
    assert full.decide("a", 5, 0.0, {"b": 1.0}) == "continue"
    assert full.decide("a", 10, 0.0) == "complete"


@pytest.mark.parametrize("scheduler", [FullBudget(12), SuccessiveHalving(1, 27, 3, maximize=False)])
def test_json_round_trip(scheduler) -> None:
    again = scheduler_from_dict(json.loads(json.dumps(scheduler.to_dict())))
    assert again == scheduler and again.rungs == scheduler.rungs


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: SuccessiveHalving(0, 9, 3),
            "min_epochs must be an integer >= 1, got min_epochs=0",
        ),
        (
            lambda: SuccessiveHalving(10, 9, 3),
            "max_epochs must be >= min_epochs, got min_epochs=10, max_epochs=9",
        ),
        (lambda: SuccessiveHalving(1, 9, 1), "eta must be an integer >= 2, got eta=1"),
        (lambda: FullBudget(0), "n_epochs must be an integer >= 1, got n_epochs=0"),
        (lambda: FullBudget(5).decide("a", 0, 1.0), "epoch must be an integer >= 1, got epoch=0"),
        (
            lambda: SuccessiveHalving(1, 9, 3).decide("a", 1, 1.0, [0.5]),
            "all_scores_at_rung must map trial id -> score, got list",
        ),
        (lambda: scheduler_from_dict({"kind": "hyperband"}), "unknown scheduler kind 'hyperband'"),
        (
            lambda: scheduler_from_dict({"kind": "full_budget", "n_epochs": 3, "budget": 2}),
            "unknown keys ['budget'] for a full_budget scheduler",
        ),
    ],
)
def test_validation_messages(make, message: str) -> None:
    with pytest.raises(SpaceError) as info:  # SchedulerError is a SpaceError
        make()
    assert message in str(info.value)
