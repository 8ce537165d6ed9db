"""Every study page over a study the REAL runner wrote (worker processes, checkpoints, the
runner's own rows), not rows faked with raw SQL: what each view shows must match what the
runner stored.

The study (8 trials of a tiny moons net, searching a log float, a log int and a Choice) is run
once for the module; each test works on its own copy of that database (SQLite's backup), so
whatever a page writes stays in its test.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sqlite3

import numpy as np
import pytest

from engine import babysit
from engine import study as studies_api
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study
from engine.study.runner import run_study
from tests.app.conftest import no_exception

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}
SPACE = {"params": {"learning_rate": {"type": "float", "low": 3e-3, "high": 0.1, "scale": "log"},
                    "hidden_units": {"type": "int", "low": 4, "high": 16, "scale": "log"},
                    "optimizer": {"type": "choice", "options": ["sgd", "adam"]}},
         "fixed": {"hidden_layers": 1, "batch_size": 32}}
N_TRIALS, EPOCHS = 8, 3


@pytest.fixture(scope="module")
def real_db(tmp_path_factory):
    """The database a real runner wrote: one complete study, its id."""
    path = tmp_path_factory.mktemp("real") / "real.db"
    study_id = new_study(path, name="real runner", space=SPACE, sampler={"kind": "random"},
                         scheduler={"kind": "full_budget", "n_epochs": EPOCHS}, dataset=MOONS,
                         n_trials=N_TRIALS, seed=3, workers=2)
    # alone: a trial trained stacked cannot be replayed (see the stacked test below), and
    # whether the best one stacked depended on how the two workers took the trials
    assert run_study(path, study_id, stack=False) == "complete"
    return path, study_id


@pytest.fixture
def study(real_db, app_db):
    """This test's copy of the real database at the page's path; the study id."""
    source, study_id = real_db
    with sqlite3.connect(source) as src, sqlite3.connect(app_db) as dst:
        src.backup(dst)
    return study_id


@pytest.fixture
def stored(study, conn):
    """What the runner stored: the study and its trials."""
    return store.get_study(conn, study), store.list_trials(conn, study)


def show(at, view: str):
    at.segmented_control(key="study.view").set_value(view).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def values(array) -> list[float]:
    """A figure array as plain numbers (Plotly ships numeric arrays as base64 ``bdata``)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_the_runner_wrote_a_real_study(stored, conn):
    study, trials = stored
    assert study["status"] == "complete" and len(trials) == N_TRIALS
    assert {t["state"] for t in trials} == {"complete"}
    assert all(t["checkpoint_id"] and t["epochs_done"] == EPOCHS for t in trials)
    assert {t["params"]["optimizer"] for t in trials} == {"sgd", "adam"}


def test_overview_lists_it_as_done(open_page, stored):
    at = open_page()
    no_exception(at)
    text = " ".join(m.value for m in at.markdown)
    assert "real runner" in text and "✓ done" in text


def test_summary_and_curves_show_the_stored_numbers(open_page, study, stored, conn):
    _, trials = stored
    at = open_page("studies", study=study)
    no_exception(at)
    assert at.get("progress")[0].value == 100
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Epochs trained"] == str(N_TRIALS * EPOCHS)
    assert metrics["Best val accuracy"] == f"{max(t['best_val_acc'] for t in trials):.3f}"
    assert metrics["Pruned / diverged / failed"] == "0 / 0 / 0"
    curves = charts(at)[0]["data"]  # val loss: the top trials each, the rest in one grey trace
    drawn = {round(y, 6) for t in curves if t.get("name", "").startswith("val")
             for y in values(t["y"]) if y is not None and y == y}  # gaps are NaN
    stored = {round(m["val_loss"], 6) for t in trials for m in store.trial_metrics(conn, t["id"])}
    assert stored <= drawn and len(stored) == N_TRIALS * EPOCHS


def test_trials_table_is_the_runners_rows(open_page, study, stored):
    _, trials = stored
    at = show(open_page("studies", study=study), "Trials")
    table = at.dataframe[0].value
    assert len(table) == N_TRIALS
    by_number = {int(r["trial"]): r for r in table.to_dict("records")}
    for t in trials:
        row = by_number[t["number"]]
        assert row["state"] == "complete" and row["epochs"] == EPOCHS
        assert row["best val acc"] == t["best_val_acc"]
        assert row["optimizer"] == t["params"]["optimizer"]
        assert row["learning_rate"] == pytest.approx(t["params"]["learning_rate"])


def test_babysitting_a_real_trial_rolls_back_into_its_history(open_page, study, stored, conn):
    at = show(open_page("studies", study=study), "Trials")
    at.button(key="trials.babysit").click().run()
    no_exception(at)
    session_id = int(at.query_params["session"])
    view = babysit.session_view(conn, session_id)
    assert view["head_epoch"] == EPOCHS and view["source_trial_id"] is not None
    rebuilt = sorted(t["epoch"] for t in view["rollback_targets"] if t["rebuild"])
    assert rebuilt == list(range(EPOCHS))  # the real trial's epochs, before any new one
    babysit.execute(conn, session_id, "rollback", {"epoch": 1})  # replay matches the runner's
    assert babysit.session_view(conn, session_id)["head_epoch"] == 1


def test_a_stacked_trial_offers_no_earlier_epoch_to_roll_back_to_or_fork_at(app_db, open_page):
    """The demo trains stacked: each of an adopted trial's earlier epochs was offered as "the
    trial's, rebuilt on rollback", and each rollback to one was refused by the runner (its
    replay, trained alone, is not the stacked run); "Babysit from here" offered to fork it at
    any earlier epoch, replayed alone into other weights (2.4x off in loss by epoch 30)."""
    path = app_db
    space = {"params": {"learning_rate": SPACE["params"]["learning_rate"]},
             "fixed": {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}}
    study_id = new_study(path, name="stacked", space=space, sampler={"kind": "random"},
                         scheduler={"kind": "full_budget", "n_epochs": EPOCHS}, dataset=MOONS,
                         n_trials=4, seed=3, workers=1)
    assert run_study(path, study_id, stack=True) == "complete"
    stacked = connect(path)
    try:
        for trial in store.list_trials(stacked, study_id):
            view = babysit.session_view(stacked, babysit.adopt_trial(stacked, trial["id"]))
            assert view["head_epoch"] == EPOCHS
            # epoch 0 only: the seed's initial weights, which no replay has to retrace
            assert [t["epoch"] for t in view["rollback_targets"] if t["rebuild"]] == [0]
            with pytest.raises(ValueError, match="trained stacked with other trials"):
                studies_api.fork_trial(stacked, trial["id"], epoch=1, start=False)
    finally:
        stacked.close()
    at = show(open_page("studies", study=study_id), "Trials")
    no_exception(at)
    assert not [n for n in at.number_input if n.label == "... from epoch"]
    assert any(f"at epoch {EPOCHS}, its latest, only: it trained stacked" in c.value
               for c in at.caption)


def test_sampled_points_draw_each_parameter_on_its_scale(open_page, study):
    at = show(open_page("studies", study=study), "Sampled points")
    layout = charts(at)[0]["layout"]
    types = {layout[k]["title"]["text"]: layout[k]["type"] for k in layout
             if k.startswith("xaxis") and "title" in layout[k]}
    assert types == {"learning_rate": "log", "hidden_units": "log", "optimizer": "category"}


def test_parallel_and_best_so_far(open_page, study, stored):
    _, trials = stored
    at = show(open_page("studies", study=study), "Parallel coordinates")
    parcoords = charts(at)[0]["data"][0]
    assert parcoords["type"] == "parcoords"
    assert len(values(parcoords["dimensions"][0]["values"])) == N_TRIALS
    at = show(at, "Best so far")
    best = max(t["best_val_acc"] for t in trials)
    by_trials = charts(at)[0]["data"]
    assert max(v for t in by_trials for v in values(t["y"]) if v == v) == pytest.approx(best)


def test_zoom_box_keeps_the_choice_and_formats_the_numbers(open_page, study):
    at = show(open_page("studies", study=study), "Zoom in")
    rows = {r["parameter"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert set(rows) == {"learning_rate", "hidden_units", "optimizer"}
    assert rows["optimizer"]["from"] == "one of sgd, adam"
    low, high = float(rows["learning_rate"]["from"]), float(rows["learning_rate"]["to"])
    assert 3e-3 <= low < high <= 0.1
    assert rows["hidden_units"]["from"].isdigit() and rows["hidden_units"]["to"].isdigit()


def test_importance_ranks_the_searched_knobs(open_page, study):
    at = show(open_page("studies", study=study), "Importance")
    assert not any("needs at least 8 trials" in i.value for i in at.info)
    shown = json.dumps(charts(at))
    assert all(name in shown for name in ("learning_rate", "hidden_units", "optimizer"))


def test_hands_on_and_export(open_page, study, stored):
    from app.study_views import export_csv

    show(open_page("studies", study=study), "Hands on")
    at = show(open_page("studies", study=study), "Export")
    assert len(at.get("download_button")) == 2
    rows = list(csv.DictReader(io.StringIO(export_csv(study, "trials")())))
    assert len(rows) == N_TRIALS and {r["state"] for r in rows} == {"complete"}
    metrics = list(csv.DictReader(io.StringIO(export_csv(study, "metrics")())))
    assert len(metrics) == N_TRIALS * EPOCHS


def test_inspector_opens_a_real_checkpoint(open_page, study, stored):
    _, trials = stored
    trial = trials[0]
    at = open_page("inspector", trial=trial["id"])
    no_exception(at)
    assert not at.error
    assert (f"trial {trial['number']} of study 'real runner' (epoch {EPOCHS})"
            in " ".join(m.value for m in at.markdown))


def test_compare_page_takes_it(open_page, study):
    at = open_page("compare", studies=study)
    no_exception(at)
    assert not at.error

