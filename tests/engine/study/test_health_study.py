"""The study runner stores network health with every epoch it records, and the flags of the
sick nets land on their trials."""

from __future__ import annotations

from engine.diagnosis import flag_kinds
from engine.run.work import run_segment
from engine.storage import studies as store
from engine.storage.db import connect
from tests.engine.study.sick import EPOCHS, EXPECTED, sick_study


def test_the_study_runner_stores_health_and_flags_the_sick_trials(db_path):
    study_id = sick_study(db_path)
    conn = connect(db_path)
    trials = store.list_trials(conn, study_id)
    assert sorted(t["params"]["learning_rate"] for t in trials) == sorted(EXPECTED)
    for trial in trials:
        assert flag_kinds(trial["flags"]) == EXPECTED[trial["params"]["learning_rate"]], trial
        epochs = store.trial_metrics(conn, trial["id"])
        assert len(epochs) == EPOCHS and all("health" in e for e in epochs)
        assert trial["health"] == epochs[-1]["health"]
        assert trial["health"]["rows"] == 48  # the validation part of 240 rows


def test_the_default_cadence_measures_the_segments_ends_and_still_flags(db_path):
    study_id = sick_study(db_path, work_fn=run_segment)  # segments of at most 3 epochs
    conn = connect(db_path)
    for trial in store.list_trials(conn, study_id):
        measured = [e["epoch"] for e in store.trial_metrics(conn, trial["id"]) if "health" in e]
        assert measured[0] == 1 and measured[-1] == EPOCHS and len(measured) >= 2, measured
        assert flag_kinds(trial["flags"]) == EXPECTED[trial["params"]["learning_rate"]], trial


def test_no_health_when_it_is_switched_off(db_path, monkeypatch):
    monkeypatch.setenv("PANDA_CAVIAR_HEALTH_EVERY", "0")
    study_id = sick_study(db_path, work_fn=run_segment)
    conn = connect(db_path)
    for trial in store.list_trials(conn, study_id):
        assert trial["health"] is None
        assert not any("health" in e for e in store.trial_metrics(conn, trial["id"]))
