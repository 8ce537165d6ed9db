"""The scheduler contract, run over every registered scheduler kind (a new kind cannot escape).

A small simulated runner drives each scheduler the way ``engine.study.runner`` does: trials train
one segment at a time up to their next milestone, report, and continue, pause, get pruned or
complete; once every live trial is paused, ``on_pause`` is applied and they all go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from engine.search import (
    DECISIONS,
    SCHEDULERS,
    Float,
    History,
    Objective,
    Scheduler,
    Space,
    TrialRecord,
    scheduler_from_dict,
)

#: every kind's example (all need at least a budget).
EXAMPLES: dict[str, Callable[[], Scheduler]] = {
    "full_budget": lambda: SCHEDULERS["full_budget"](n_epochs=6),
    "successive_halving": lambda: SCHEDULERS["successive_halving"](1, 9, 3),
    "hyperband": lambda: SCHEDULERS["hyperband"](1, 9, 3),
    "pbt": lambda: SCHEDULERS["pbt"](interval=2, n_rounds=3),
}
SPACE = Space({"learning_rate": Float(1e-4, 1.0, "log"), "l2": Float(1e-6, 1e-1, "log")})


def simulate(scheduler: Scheduler, n: int = 10, *, metric: str = "val_acc", seed: int = 0):
    """Run ``n`` trials to the end; return (history, the trace of (number, epoch, decision))."""
    rng = np.random.default_rng(seed)
    sign = 1.0 if Objective(metric).maximize else -1.0
    quality = {k: float(rng.random()) for k in range(n)}

    def score(k: int, epoch: int) -> float:  # learning curves that cross
        return sign * (quality[k] * (1 - 1 / (epoch + 1)) + 0.3 * (k % 3) / (epoch + 2))

    trials = [TrialRecord(k, tuple(rng.random(2)), SPACE.params_from_unit(rng.random(2)),
                          "waiting", {}, scheduler.target_epochs(6)) for k in range(n)]
    objective = Objective(metric)
    trace, queue, paused = [], list(range(n)), []

    def history() -> History:
        return History(tuple(trials), objective, seed=seed, n_trials=n)

    guard = 0
    while queue or paused:
        guard += 1
        assert guard < 10_000, "the scheduler never lets the study finish"
        if not queue:
            plan = scheduler.on_pause(sorted(paused), history(), SPACE,
                                      np.random.default_rng([seed, guard]))
            assert set(plan) <= set(paused)
            for recipient, (donor, params) in plan.items():
                assert donor in paused and donor != recipient
                SPACE.unit_from_params(params)
                quality[recipient] = quality[donor]
            queue, paused = sorted(paused), []
            for k in queue:
                trials[k] = TrialRecord(k, trials[k].unit, trials[k].params, "running",
                                        trials[k].scores, trials[k].target_epochs)
            continue
        k = queue.pop(0)
        t = trials[k]
        milestone = scheduler.next_milestone(k, t.epochs, t.target_epochs)
        assert t.epochs < milestone <= t.target_epochs
        scores = {**t.scores, **{e: score(k, e) for e in range(t.epochs + 1, milestone + 1)}}
        trials[k] = TrialRecord(k, t.unit, t.params, "running", scores, t.target_epochs)
        decision = scheduler.decide(k, milestone, history())
        assert decision in DECISIONS
        trace.append((k, milestone, decision))
        state = {"complete": "complete", "prune": "pruned", "pause": "paused"}.get(decision,
                                                                                 "running")
        trials[k] = TrialRecord(k, t.unit, t.params, state, scores, t.target_epochs)
        if decision == "continue":
            queue.insert(0, k)  # depth-first, as the runner
        elif decision == "pause":
            paused.append(k)
    return history(), trace


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(SCHEDULERS), "add the new kind to EXAMPLES"


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
class TestSchedulerContract:
    def test_rungs_rise_to_the_budget(self, kind) -> None:
        s = EXAMPLES[kind]()
        assert list(s.rungs) == sorted(set(s.rungs)) and s.rungs[-1] == s.max_epochs
        for number in range(5):
            target = s.target_epochs(s.max_epochs)
            rungs = s.rungs_for(number, target)
            assert rungs[-1] == target and list(rungs) == sorted(set(rungs))

    def test_a_study_runs_to_its_end(self, kind) -> None:
        history, trace = simulate(EXAMPLES[kind]())
        for t in history.trials:
            assert t.state in ("complete", "pruned")
            assert t.epochs <= t.target_epochs
            assert sorted(t.scores) == list(range(1, t.epochs + 1))  # no gap, no repeat
            assert (t.state == "complete") == (t.epochs == t.target_epochs)
        assert any(t.state == "complete" for t in history.trials)
        milestones = {}
        for number, epoch, _ in trace:
            assert epoch > milestones.get(number, 0)
            milestones[number] = epoch

    def test_decisions_are_deterministic(self, kind) -> None:
        assert simulate(EXAMPLES[kind](), seed=3)[1] == simulate(EXAMPLES[kind](), seed=3)[1]

    def test_direction_comes_from_the_objective(self, kind) -> None:
        """Negated scores under a minimised metric are the same study."""
        _, up = simulate(EXAMPLES[kind](), metric="val_acc", seed=4)
        _, down = simulate(EXAMPLES[kind](), metric="val_loss", seed=4)
        assert up == down

    def test_budget_decision_is_complete(self, kind) -> None:
        s = EXAMPLES[kind]()
        target = s.target_epochs(s.max_epochs)
        trial = TrialRecord(0, (0.5, 0.5), {}, "running", {target: 0.5}, target)
        assert s.decide(0, target, History((trial,), Objective())) == "complete"

    def test_json_round_trip(self, kind) -> None:
        s = EXAMPLES[kind]()
        again = scheduler_from_dict(json.loads(json.dumps(s.to_dict())))
        assert type(again) is type(s) and again == s and again.rungs == s.rungs
