"""What is particular to each scheduler: rungs, milestones, ASHA on a hand-made example,
validation messages (the contract itself is in test_scheduler_contract.py)."""

from __future__ import annotations

import math

import pytest

from engine.search import (
    ASHA,
    FullBudget,
    History,
    Hyperband,
    Objective,
    SchedulerError,
    SpaceError,
    SuccessiveHalving,
    TrialRecord,
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
    assert [asha.next_milestone(0, done, 9) for done in range(9)] == [1, 3, 3, 9, 9, 9, 9, 9, 9]
    with pytest.raises(SchedulerError, match=r"epochs_done=9 already reached the trial's budget"):
        asha.next_milestone(0, 9, 9)
    full = FullBudget(10)
    assert full.next_milestone(0, 0, 10) == full.next_milestone(0, 7, 10) == 10
    assert full.next_milestone(3, 2, 4) == 4  # a trial with its own (searched) budget
    assert full.target_epochs(4) == 4 and asha.target_epochs(4) == 9


class Rung:
    """Trials reporting one after another at epochs; the history the runner would hold."""

    def __init__(self, metric: str = "val_acc") -> None:
        self.trials: list[TrialRecord] = []
        self.objective = Objective(metric)

    def report(self, number: int, epoch: int, score: float) -> History:
        scores = {}
        if number < len(self.trials):
            scores = dict(self.trials[number].scores)
        while len(self.trials) <= number:
            self.trials.append(TrialRecord(len(self.trials), (0.5,), {}, "running", {}, 9))
        scores[epoch] = score
        old = self.trials[number]
        self.trials[number] = TrialRecord(number, old.unit, {}, "running", scores, 9)
        return History(tuple(self.trials), self.objective)


def test_asha_hand_made_example() -> None:
    asha = SuccessiveHalving(min_epochs=1, max_epochs=9, eta=3)
    rung = Rung()
    expected = [
        (0, 0.50, "continue"),  # alone at the rung: the best so far goes on
        (1, 0.40, "prune"),  # 2 trials: top max(1, 2 // 3) = 1 is trial 0
        (2, 0.70, "continue"),
        (3, 0.60, "prune"),
        (4, 0.55, "prune"),
        (5, 0.65, "continue"),  # 6 trials: the top 2 are 0.70 and 0.65
        (6, 0.62, "prune"),
    ]
    for number, score, decision in expected:
        assert asha.decide(number, 1, rung.report(number, 1, score)) == decision, number
    for number, score, decision in [(0, 0.6, "continue"), (2, 0.8, "continue"),
                                    (5, 0.7, "prune")]:
        assert asha.decide(number, 3, rung.report(number, 3, score)) == decision, number
    assert asha.decide(2, 9, rung.report(2, 9, 0.85)) == "complete"
    assert asha.decide(0, 2, rung.report(0, 2, 0.1)) == "continue"  # not a rung: no decision


def test_asha_minimizing_a_loss() -> None:
    asha = ASHA(min_epochs=2, max_epochs=8, eta=2)
    rung = Rung("val_loss")
    assert asha.decide(0, 2, rung.report(0, 2, 1.0)) == "continue"
    assert asha.decide(1, 2, rung.report(1, 2, 2.0)) == "prune"
    assert asha.decide(2, 2, rung.report(2, 2, 0.5)) == "continue"


def test_asha_non_finite_scores() -> None:
    asha = SuccessiveHalving(1, 9, 3)
    rung = Rung()
    assert asha.decide(0, 1, rung.report(0, 1, math.nan)) == "prune"
    assert asha.decide(1, 1, rung.report(1, 1, 0.2)) == "continue"


def test_hyperband_brackets_and_their_shares() -> None:
    hb = Hyperband(1, 27, 3)
    assert hb.rungs == (1, 3, 9, 27)
    assert hb.brackets == ((1, 3, 9, 27), (3, 9, 27), (9, 27), (27,))
    # Hyperband's counts for 4 brackets and eta 3: 27, 12, 6 and 4 trials a cycle
    assert len(hb.cycle) == 49
    assert [hb.cycle.count(b) for b in range(4)] == [27, 12, 6, 4]
    first = [hb.bracket(n) for n in range(12)]
    assert len(set(first)) >= 3  # interleaved, not 27 of one bracket first
    assert [hb.bracket(n + 49) for n in range(12)] == first
    for number in range(49):
        assert hb.rungs_for(number, 27) == hb.brackets[hb.bracket(number)]
    assert hb.rungs_for(0, 5) == tuple(r for r in hb.brackets[hb.bracket(0)] if r < 5) + (5,)
    assert Hyperband(2, 20, 3).brackets == ((2, 6, 18, 20), (6, 18, 20), (18, 20), (20,))


def test_hyperband_trials_compete_only_within_their_bracket() -> None:
    hb = Hyperband(1, 9, 3)  # brackets (1, 3, 9), (3, 9), (9,)
    by_bracket: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for number in range(40):
        by_bracket[hb.bracket(number)].append(number)
    a, b = by_bracket[0][:2]
    rung = Rung()
    assert hb.decide(a, 1, rung.report(a, 1, 0.9)) == "continue"
    assert hb.decide(b, 1, rung.report(b, 1, 0.1)) == "prune"  # worse than a, same bracket
    c, d = by_bracket[1][:2]  # their first rung is 3: epoch 1 is no decision for them
    assert hb.decide(c, 1, rung.report(c, 1, 0.95)) == "continue"
    assert hb.decide(c, 3, rung.report(c, 3, 0.2)) == "continue"
    assert hb.decide(d, 3, rung.report(d, 3, 0.1)) == "prune"
    e = by_bracket[0][2]  # bracket 0's rung 3 holds no bracket-1 trial: e is alone there
    rung.report(e, 1, 0.99)
    assert hb.decide(e, 3, rung.report(e, 3, 0.05)) == "continue"
    f = by_bracket[2][0]  # the last bracket never prunes
    assert hb.decide(f, 3, rung.report(f, 3, 0.0)) == "continue"
    assert hb.decide(f, 9, rung.report(f, 9, 0.0)) == "complete"


def test_full_budget() -> None:
    full = FullBudget(10)
    rung = Rung()
    assert full.rungs == (10,) and full.max_epochs == 10
    assert full.decide(0, 5, rung.report(0, 5, 0.0)) == "continue"
    assert full.decide(0, 8, rung.report(0, 8, 0.0)) == "continue"  # its own budget is 9
    history = History((TrialRecord(0, (0.5,), {}, "running", {10: 0.1}, 10),))
    assert full.decide(0, 10, history) == "complete"


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
        (lambda: FullBudget(5).decide(0, 0, History()), "epoch must be an integer >= 1, got "
                                                         "epoch=0"),
        (lambda: scheduler_from_dict({"kind": "nope"}), "unknown scheduler kind 'nope'"),
        (
            lambda: scheduler_from_dict({"kind": "full_budget", "n_epochs": 3, "budget": 2}),
            "unknown keys ['budget'] for a full_budget scheduler",
        ),
        (
            lambda: scheduler_from_dict({"kind": "full_budget", "n_epochs": 3, "maximize": True}),
            "maximize is not a scheduler setting: the study's objective says what is maximised",
        ),
    ],
)
def test_validation_messages(make, message: str) -> None:
    with pytest.raises(SpaceError) as info:  # SchedulerError is a SpaceError
        make()
    assert message in str(info.value)
