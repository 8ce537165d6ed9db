"""Studies with the samplers that learn, run by the real runner (stand-in work on threads):
parallel workers get distinct trials, the belief is stored as trials finish, Hyperband runs."""

from __future__ import annotations

import math

import pytest

from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study
from tests.engine.study.helpers import run_fake

SPACE = {"params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
                    "batch_norm": {"type": "choice", "options": [True, False]}},
         "fixed": {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


@pytest.mark.parametrize("kind", ["gp", "tpe", "zoom"])
def test_a_learning_study_on_two_workers(db_path, kind) -> None:
    sampler = {"kind": kind, "first_round": 6, "round_size": 4} if kind == "zoom" else {
        "kind": kind, "n_startup": 6}
    study_id = new_study(db_path, name=kind, space=SPACE, sampler=sampler, dataset=MOONS,
                         scheduler={"kind": "full_budget", "n_epochs": 2}, n_trials=16, seed=3,
                         workers=2)
    assert run_fake(db_path, study_id) == "complete"
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    trials = store.list_trials(conn, study_id)
    assert len(trials) == 16 and study["counts"]["complete"] == 16
    points = {tuple(t["unit"]) for t in trials}
    assert len(points) == 16  # no worker was sent to a point already asked
    belief = study["belief"]
    assert belief["kind"] == kind
    if kind == "zoom":
        assert [r["round"] for r in belief["rounds"]] == [0, 1, 2, 3]
    else:
        assert set(belief["slices"]) == {"learning_rate", "batch_norm"}
        assert len(belief["observed"]) == 16
    rates = [t["params"]["learning_rate"] for t in sorted(trials, key=lambda t: t["number"])]
    best_late = min(abs(math.log10(r) + 2) for r in rates[10:])
    assert best_late < 0.5  # the stand-in work is best at 1e-2: the search found the region


def test_a_gp_study_with_hyperband(db_path) -> None:
    study_id = new_study(db_path, name="bohb", space=SPACE, sampler={"kind": "gp", "n_startup": 5},
                         dataset=MOONS, scheduler={"kind": "hyperband", "min_epochs": 1,
                                                   "max_epochs": 9, "eta": 3},
                         n_trials=24, seed=1, workers=2)
    assert run_fake(db_path, study_id) == "complete"
    conn = connect(db_path)
    trials = store.list_trials(conn, study_id)
    states = {t["state"] for t in trials}
    assert states <= {"complete", "pruned"} and "pruned" in states and "complete" in states
    belief = store.get_study(conn, study_id)["belief"]
    assert belief["kind"] == "gp" and belief["epoch"] in (1, 3, 9)
