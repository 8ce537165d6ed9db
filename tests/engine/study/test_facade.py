"""The studies facade: validation before anything is stored, budgets, zoom studies, exports."""

from __future__ import annotations

import csv
import io
import os

import pytest

from engine.search import Space
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.export import escape_cell
from engine.study.facade import (
    coarse_to_fine_child,
    export_metrics_csv,
    export_trials_csv,
    new_study,
    resume_study,
    start_study,
    stop_study,
    zoom_plan,
)
from tests.engine.study.helpers import run_fake

SPACE = {
    "params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"},
               "hidden_units": {"type": "int", "low": 4, "high": 64, "scale": "log"}},
    "fixed": {"hidden_layers": 1, "batch_size": 32},
}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2}


def make(db, **overrides) -> int:
    options = dict(name="t", space=SPACE, sampler={"kind": "random"},
                   scheduler={"kind": "full_budget", "n_epochs": 3}, dataset=MOONS, n_trials=6)
    options.update(overrides)
    return new_study(db, **options)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampler": {"kind": "genetic"}}, "unknown sampler kind 'genetic'"),
        ({"scheduler": {"kind": "full_budget", "epochs": 3}}, "unknown keys \\['epochs'\\]"),
        ({"scheduler": {"kind": "successive_halving", "eta": 1}}, "eta must be an integer >= 2"),
        ({"dataset": {"kind": "moon"}}, "moon"),
        ({"space": {"params": {"learnin_rate": {"type": "float", "low": 0.1, "high": 1}}}},
         "learnin_rate"),
        ({"n_trials": 0}, "n_trials must be an integer in 1..100000, got n_trials=0"),
        ({"workers": 0}, "workers must be an integer in 1..1024, got workers=0"),
        ({"seed": -1}, "seed must be an integer"),
        ({"executor_address": "localhost"}, "tcp://127.0.0.1:8786"),
        ({"space": {"params": {"n_epochs": {"type": "int", "low": 2, "high": 8}}},
          "scheduler": {"kind": "successive_halving", "max_epochs": 8}}, "n_epochs is searched"),
        ({"space": {"params": {"hidden_units": {"type": "choice", "options": [8, 4096, 16]}},
                    "fixed": {"hidden_layers": 7}}},
         r"model too large: [\d,]+ parameters asked for .* the limit is 5,000,000"),
        ({"space": {"params": {"batch_size": {"type": "int", "low": 32, "high": 65536}},
                    "fixed": {"hidden_layers": 2, "hidden_units": 2048}}},
         "batch too large"),
    ],
)
def test_invalid_studies_are_refused_before_anything_is_stored(db_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        make(db_path, **overrides)
    assert store.list_studies(connect(db_path)) == []


def test_new_study_stores_no_trial_its_runner_asks_them(db_path):
    study_id = make(db_path, name="  ", space=None, scheduler={"kind": "full_budget"},
                    workers=None, n_trials=4)
    conn = connect(db_path)
    study = store.get_study(conn, study_id)
    assert study["name"].startswith("study ") and study["workers"] == os.cpu_count()
    # The budget came from the default space's n_epochs (20) and is written back into it.
    assert study["scheduler"]["n_epochs"] == 20 and study["space"]["fixed"]["n_epochs"] == 20
    assert study["status"] == "queued" and store.list_trials(conn, study_id) == []
    assert study["n_trials"] == 4 and study["objective"] == {"metric": "val_acc"}
    assert run_fake(conn, study_id) == "complete"
    trials = store.list_trials(conn, study_id)
    assert len(trials) == 4 and {t["state"] for t in trials} == {"complete"}
    assert all(t["target_epochs"] == 20 and t["params"]["n_epochs"] == 20 for t in trials)
    assert all(len(t["unit"]) == 5 and all(0 <= u <= 1 for u in t["unit"]) for t in trials)
    assert len({t["params"]["learning_rate"] for t in trials}) == 4


def test_a_searched_budget_gives_each_trial_its_own(db_path):
    space = {"params": {"n_epochs": {"type": "int", "low": 2, "high": 9}}, "fixed": {}}
    study_id = make(db_path, space=space, scheduler={"kind": "full_budget"}, n_trials=8)
    run_fake(db_path, study_id)
    trials = store.list_trials(connect(db_path), study_id)
    assert all(t["epochs_done"] == t["target_epochs"] for t in trials)
    assert [t["target_epochs"] for t in trials] == [t["params"]["n_epochs"] for t in trials]
    assert len({t["target_epochs"] for t in trials}) > 1


def test_grid_without_n_trials_takes_the_whole_grid(db_path):
    space = {"params": {"learning_rate": {"type": "choice", "options": [0.1, 0.01, 0.001]}}}
    study_id = make(db_path, space=space, sampler={"kind": "grid"}, n_trials=None)
    assert store.get_study(connect(db_path), study_id)["n_trials"] == 3


def test_csv_study_stores_its_upload(db_path):
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{'ab'[i % 2]}" for i in range(60))
    text = "f1,f2,label\n" + rows + "\n"
    study_id = make(db_path, dataset={"kind": "csv", "label_column": "label"}, csv_text=text)
    conn = connect(db_path)
    digest = store.get_study(conn, study_id)["dataset"]["csv_sha256"]
    assert store.get_upload(conn, digest) == text
    with pytest.raises(ValueError, match="label"):
        make(db_path, dataset={"kind": "csv", "label_column": "nope"}, csv_text=text)


def _score(conn, study_id):
    """Let the parent run: fake epochs whose accuracy is best near learning rate 1e-2."""
    assert run_fake(conn, study_id) == "complete"


def test_coarse_to_fine_child_zooms_around_the_best(db_path):
    conn = connect(db_path)
    parent = make(conn, n_trials=12)
    with pytest.raises(ValueError, match=r"no trial with a score yet \(maximise val_acc\)"):
        coarse_to_fine_child(conn, parent)
    _score(conn, parent)
    child = coarse_to_fine_child(conn, parent, top_fraction=0.25, shrink=0.3, n_trials=5)
    _score(conn, child)
    study = store.get_study(conn, child)
    assert study["parent_id"] == parent and study["n_trials"] == 5
    assert study["sampler"]["kind"] == "coarse_to_fine" and study["sampler"]["top_k"] == 3
    low, high = study["box"]["unit"]["learning_rate"]
    assert high - low < 1.0
    for trial in store.list_trials(conn, child):
        assert low <= trial["unit"][0] <= high
    best = max(store.list_trials(conn, parent), key=lambda t: t["best_val_acc"])
    assert low <= best["unit"][0] <= high


def test_stop_and_resume_without_a_runner(db_path, monkeypatch):
    conn = connect(db_path)
    study_id = make(conn, n_trials=2)
    store.set_study_status(conn, study_id, "running")  # as if its runner had been killed
    store.add_trials(conn, study_id, [{"params": {}, "unit": [0.5, 0.5], "target_epochs": 3}])
    trial = store.list_trials(conn, study_id)[0]
    store.set_trial_state(conn, trial["id"], "running")
    assert store.get_study(conn, study_id)["status"] == "interrupted"
    assert stop_study(conn, study_id) == "stopped"
    assert store.get_trial(conn, trial["id"])["state"] == "stopped"
    spawned = []
    monkeypatch.setattr("engine.study.facade.ensure_study_runner",
                        lambda c, sid, path: spawned.append((sid, path)) or 4242)
    runners.post_intent(conn, "study", study_id, "stop")  # stale: nobody was there to take it
    assert resume_study(conn, study_id) == 4242
    assert spawned == [(study_id, db_path)]
    assert runners.pending_intents(conn, "study", study_id) == []
    assert store.get_study(conn, study_id)["stored_status"] == "running"


def test_a_finished_study_is_not_restarted(db_path):
    conn = connect(db_path)
    study_id = make(conn, n_trials=2)
    _score(conn, study_id)
    assert start_study(conn, study_id) is None
    assert store.get_study(conn, study_id)["status"] == "complete"
    assert stop_study(conn, study_id) == "complete"


def test_exports_escape_formula_cells(db_path):
    conn = connect(db_path)
    study_id = make(conn, n_trials=2)
    _score(conn, study_id)
    trial = store.list_trials(conn, study_id)[0]
    store.set_trial_state(conn, trial["id"], "failed", error='=HYPERLINK("http://x")')
    rows = list(csv.DictReader(io.StringIO(export_trials_csv(conn, study_id))))
    assert len(rows) == 2 and rows[0]["error"] == "'=HYPERLINK(\"http://x\")"
    assert float(rows[0]["learning_rate"]) == trial["params"]["learning_rate"]
    assert rows[0]["hidden_layers"] == "1"
    metrics = list(csv.DictReader(io.StringIO(export_metrics_csv(db_path, study_id))))
    assert [r["epoch"] for r in metrics] == ["1", "2", "3"] * 2 and set(metrics[0]) >= {"val_acc"}


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+2", "'=1+2"), ("+1", "'+1"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("plain", "plain"), (-1.5, -1.5), (3, 3), (None, ""), (True, "True")],
)
def test_escape_cell(cell, expected):
    assert escape_cell(cell) == expected



def test_zoom_plan_on_chosen_trial_numbers_boxes_exactly_those(db_path):
    conn = connect(db_path)
    parent = make(conn, n_trials=8)
    _score(conn, parent)
    trials = store.list_trials(conn, parent)
    picked = [trials[1]["number"], trials[3]["number"]]
    plan = zoom_plan(conn, parent, trial_numbers=picked, shrink=0.1)
    assert plan["chosen"] == sorted(picked) and plan["n_scored"] == len(trials)
    space = Space.from_dict(plan["space"])
    for trial in (trials[1], trials[3]):  # the box holds the values (an Int's bin centre)
        u = space.unit_from_params(trial["params"])
        for x, (lo, hi) in zip(u, plan["box"]["unit"].values(), strict=True):
            assert lo <= x <= hi
    assert 0 < plan["volume"] < 1
    child = coarse_to_fine_child(conn, parent, trial_numbers=picked, shrink=0.1, n_trials=3)
    assert store.get_study(conn, child)["box"] == plan["box"]
    with pytest.raises(ValueError, match="one of top_k, top_fraction or trial_numbers"):
        zoom_plan(conn, parent, top_k=2, trial_numbers=picked)
    with pytest.raises(ValueError, match="none of trials"):
        zoom_plan(conn, parent, trial_numbers=[999])


def _loss_against_accuracy(task: dict) -> dict:
    """Like fake_segment, but the validation loss is *highest* where the accuracy is: a study
    that minimises val_loss must then prefer the least accurate trials."""
    from tests.engine.fake_work import fake_segment

    result = fake_segment(task)
    for m in result["metrics"]:
        m["val_loss"] = m["val_acc"]
    return result


def test_zoom_ranks_the_parents_trials_by_its_objective(db_path):
    conn = connect(db_path)
    parent = make(conn, n_trials=8, objective={"metric": "val_loss"})
    assert run_fake(conn, parent, work_fn=_loss_against_accuracy) == "complete"
    trials = store.list_trials(conn, parent)
    lowest_loss = min(trials, key=lambda t: t["best_val_loss"])
    plan = zoom_plan(conn, parent, top_k=1, shrink=0.2)
    assert plan["chosen"] == [lowest_loss["number"]]
    assert plan["sampler"]["objective"] == {"metric": "val_loss"}
    u = Space.from_dict(plan["space"]).unit_from_params(lowest_loss["params"])
    for x, (lo, hi) in zip(u, plan["box"]["unit"].values(), strict=True):
        assert lo <= x <= hi


def test_a_zoom_of_a_zoom_goes_below_half_the_width(db_path):
    conn = connect(db_path)
    parent = make(conn, n_trials=10)
    _score(conn, parent)
    child = coarse_to_fine_child(conn, parent, top_k=1, shrink=0.5, n_trials=6)
    _score(conn, child)
    child_box = store.get_study(conn, child)["box"]["unit"]
    grandchild = coarse_to_fine_child(conn, child, top_k=1, shrink=0.5, n_trials=3)
    box = store.get_study(conn, grandchild)["box"]["unit"]
    for name, (lo, hi) in box.items():
        outer_lo, outer_hi = child_box[name]
        assert hi - lo == pytest.approx(0.5 * (outer_hi - outer_lo))  # 1/4 of the range
        assert outer_lo - 1e-12 <= lo <= hi <= outer_hi + 1e-12


def test_a_childs_seed_is_no_other_studys_seed(db_path):
    conn = connect(db_path)
    parent = make(conn, n_trials=4, seed=0)
    for seed in (1, 2, 3):
        make(conn, n_trials=4, seed=seed)
    _score(conn, parent)
    first = store.get_study(conn, coarse_to_fine_child(conn, parent, n_trials=2))["seed"]
    second = store.get_study(conn, coarse_to_fine_child(conn, parent, n_trials=2))["seed"]
    assert first not in {0, 1, 2, 3} and second not in {0, 1, 2, 3, first}
    assert 0 <= first < 2**32 and 0 <= second < 2**32


def test_zoom_plan_ranks_in_sqlite_without_reading_every_epoch(db_path, monkeypatch):
    conn = connect(db_path)
    parent = make(conn, n_trials=8, objective={"metric": "val_error"})
    assert run_fake(conn, parent) == "complete"
    trials = store.list_trials(conn, parent)
    want = sorted(trials, key=lambda t: -t["best_val_acc"])[:2]  # the lowest val_error

    def every_epoch(*args, **kwargs):  # the dashboard's one-second redraw must not pay this
        raise AssertionError("zoom_plan read every epoch's metrics")

    monkeypatch.setattr(store, "study_trials_and_metrics", every_epoch)
    plan = zoom_plan(conn, parent, top_k=2)
    assert plan["chosen"] == sorted(t["number"] for t in want) and plan["n_scored"] == 8
