"""Population-based training end to end: a real tiny population on moons trained in rounds by
the runner (checkpoints copied bitwise, curves continuous, lineage recorded), stop mid-round
and right after an exploit then resume (the same study as an uninterrupted one), diverged
trials dropping out, and the checks at creation."""

from __future__ import annotations

import pytest

from engine.nn import state_from_bytes
from engine.search import Space
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import population, tell
from engine.study.facade import new_study, stop_study
from engine.study.runner import run_study
from tests.engine import fake_work

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}
SMALL = {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}
LR = {"type": "float", "low": 1e-3, "high": 0.3, "scale": "log"}
PBT = {"kind": "pbt", "interval": 2, "n_rounds": 3}


def make(db_path, *, params=None, scheduler=PBT, n_trials=4, sampler=None) -> int:
    params = params or {"learning_rate": LR}
    fixed = {k: v for k, v in SMALL.items() if k not in params}
    return new_study(db_path, name="pbt", space={"params": params, "fixed": fixed},
                     sampler=sampler or {"kind": "random"}, scheduler=scheduler, dataset=MOONS,
                     n_trials=n_trials, seed=5, workers=2)


def curves(conn, study_id) -> dict[int, list[tuple]]:
    """Per trial number: (epoch, train_loss, val_acc, learning_rate) for every epoch."""
    return {t["number"]: [(m["epoch"], m["train_loss"], m["val_acc"], m["learning_rate"])
                          for m in store.trial_metrics(conn, t["id"])]
            for t in store.list_trials(conn, study_id)}


def lineage(conn, study_id) -> list[tuple]:
    return [(r["number"], r["donor_number"], r["epoch"], r["params"])
            for r in store.trial_lineage(conn, study_id)]


def test_population_trains_in_rounds_and_recipients_take_the_donors_checkpoint(
        db_path, monkeypatch):
    seen = []
    real = population.next_round

    def spy(conn, study, scheduler, space, runs, history, configs):
        epoch = runs[0].epochs_done
        assert {run.epochs_done for run in runs} == {epoch}  # all at the boundary
        assert {t["state"] for t in store.list_trials(conn, study["id"])} == {"paused"}
        out = real(conn, study, scheduler, space, runs, history, configs)
        for row in store.trial_lineage(conn, study["id"]):  # before the next round trains
            if row["epoch"] == epoch:
                recipient, donor = row["trial_id"], row["donor_trial_id"]
                seen.append((epoch, store.trial_checkpoint(conn, recipient),
                             store.trial_checkpoint(conn, donor), row["params"],
                             store.get_trial(conn, recipient)["params"]))
        assert {t["state"] for t in store.list_trials(conn, study["id"])} == {"running"}
        return out

    monkeypatch.setattr(population, "next_round", spy)
    study_id = make(db_path)
    assert run_study(db_path, study_id) == "complete"
    conn = connect(db_path)
    assert [s[0] for s in seen] == [2, 4]  # 25 % of 4: one recipient per boundary
    for epoch, mine, donors, params, stored in seen:
        assert mine == donors and state_from_bytes(mine).epoch == epoch  # bitwise the donor's
        assert stored == params
    rows = store.trial_lineage(conn, study_id)
    assert [(r["epoch"], r["params"]) for r in rows] == [(s[0], s[3]) for s in seen]
    for number, curve in curves(conn, study_id).items():
        assert [c[0] for c in curve] == [1, 2, 3, 4, 5, 6], number  # no gap, no repeat
    for row in rows:  # the recipient trains on with the explored learning rate
        after = store.trial_metrics(conn, row["trial_id"])[row["epoch"]]
        assert after["epoch"] == row["epoch"] + 1
        assert after["learning_rate"] == pytest.approx(row["params"]["learning_rate"])
    trials = store.list_trials(conn, study_id)
    assert {t["state"] for t in trials} == {"complete"}
    assert all(t["epochs_done"] == t["target_epochs"] == 6 for t in trials)


def test_stop_mid_round_and_after_an_exploit_then_resume(db_path, monkeypatch):
    # trials alone, asked one by one as slots free (a stacking runner asks the whole population
    # at once to fill its stack: tests/engine/study/test_stacked_study.py)
    monkeypatch.setenv("PANDA_CAVIAR_STACK", "0")
    reference = make(db_path)
    assert run_study(db_path, reference) == "complete"
    study_id = make(db_path)
    real_record, real_round = tell.record, population.next_round
    recorded = []

    def record_then_stop(runner, conn, result, run):
        real_record(runner, conn, result, run)
        recorded.append(run.number)
        if len(recorded) == 3:
            stop_study(db_path, study_id)

    monkeypatch.setattr(tell, "record", record_then_stop)
    assert run_study(db_path, study_id, max_segment_epochs=1) == "stopped"
    conn = connect(db_path)
    trials = store.list_trials(conn, study_id)
    assert 2 <= len(trials) < 4  # asked as slots freed; the population is not all there yet
    assert 3 <= sum(t["epochs_done"] for t in trials) <= 4 and lineage(conn, study_id) == []
    states = {t["state"] for t in trials}
    assert "paused" in states and states <= {"paused", "stopped"}  # waiting at the boundary

    def round_then_stop(*args):
        plan = real_round(*args)
        stop_study(db_path, study_id)
        return plan

    monkeypatch.setattr(tell, "record", real_record)
    monkeypatch.setattr(population, "next_round", round_then_stop)
    assert run_study(db_path, study_id) == "stopped"
    assert [t["epochs_done"] for t in store.list_trials(conn, study_id)] == [2, 2, 2, 2]
    assert [row[2] for row in lineage(conn, study_id)] == [2]

    monkeypatch.setattr(population, "next_round", real_round)
    assert run_study(db_path, study_id) == "complete"
    assert lineage(conn, study_id) == lineage(conn, reference)  # the same choices ...
    assert curves(conn, study_id) == curves(conn, reference)  # ... and bitwise the same curves


def test_diverged_trials_drop_out_and_the_rest_go_on(db_path):
    lr = {"type": "choice", "options": [100.0, 1e-3, 1e-2, 1e-1]}
    scheduler = {**PBT, "resample_probability": 0.0}
    study_id = make(db_path, params={"learning_rate": lr}, sampler={"kind": "grid"},
                    scheduler=scheduler)
    assert run_study(db_path, study_id, work_fn=fake_work.fake_segment) == "complete"
    conn = connect(db_path)
    trials = {t["number"]: t for t in store.list_trials(conn, study_id)}
    diverged = [t for t in trials.values() if t["state"] == "diverged"]
    assert len(diverged) == 1 and diverged[0]["epochs_done"] == 1
    rows = lineage(conn, study_id)
    assert [r[2] for r in rows] == [2, 4]
    for number, donor, _, params in rows:
        assert diverged[0]["number"] not in (number, donor)
        assert params["learning_rate"] == trials[donor]["params"]["learning_rate"]
    for number, curve in curves(conn, study_id).items():
        if trials[number]["state"] == "complete":
            assert [c[0] for c in curve] == [1, 2, 3, 4, 5, 6]
    assert sum(t["state"] == "complete" for t in trials.values()) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_trials": 1}, "n_trials must be >= 2 for population-based training"),
    ({"params": {"hidden_units": {"type": "int", "low": 4, "high": 16}}},
     "population-based training perturbs searched training knobs"),
    ({"params": {"learning_rate": LR, "n_epochs": {"type": "int", "low": 2, "high": 6}}},
     "n_epochs is searched in the space, but the pbt scheduler sets the budget"),
    ({"scheduler": {"kind": "pbt", "interval": 0, "n_rounds": 3}},
     "interval must be an integer >= 1, got interval=0"),
])
def test_creation_refuses_what_pbt_cannot_run(db_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(db_path, **kwargs)


def test_a_searched_architecture_is_copied_with_the_weights(db_path):
    units = {"type": "int", "low": 4, "high": 16, "scale": "log"}
    study_id = make(db_path, params={"learning_rate": LR, "hidden_units": units})
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["space"]["fixed"]["n_epochs"] == 6  # interval * n_rounds
    space = Space.from_dict(study["space"])
    assert run_study(db_path, study_id) == "complete"
    before = {t["number"]: space.params_from_unit(t["unit"])  # as sampled at round 0
              for t in store.list_trials(conn, study_id)}
    rows = lineage(conn, study_id)
    assert any(before[number]["hidden_units"] != params["hidden_units"]
               for number, _, _, params in rows)  # a recipient changed its architecture
    for trial in store.list_trials(conn, study_id):
        assert trial["state"] == "complete" and trial["epochs_done"] == 6
        spec = state_from_bytes(store.trial_checkpoint(conn, trial["id"])).spec
        assert spec.hidden == (trial["params"]["hidden_units"],)
        copied = [params for number, _, _, params in rows if number == trial["number"]]
        assert trial["params"] == (copied[-1] if copied else before[trial["number"]])
