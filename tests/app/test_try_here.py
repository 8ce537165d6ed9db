""""Try here": a click on a trial's point or on an empty spot of the pair chart becomes the add
form's starting values."""

from __future__ import annotations

import json

import pytest

from app.charts.search import TRY_MARK, pair_scatter
from app.views.actions import TRY_KEY
from app.views.selection import try_params
from engine.search import default_space
from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

SPACE = default_space().to_dict()
TRIALS = [
    {"number": 0, "state": "complete", "best_val_acc": 0.7,
     "params": {"learning_rate": 1e-3, "l2": 1e-5, "batch_norm": True}},
    {"number": 1, "state": "complete", "best_val_acc": 0.9,
     "params": {"learning_rate": 1e-2, "l2": 1e-4, "batch_norm": False}},
]


def test_the_pair_chart_has_an_invisible_grid_over_the_whole_plane():
    fig = pair_scatter(TRIALS, SPACE, "learning_rate", "l2", try_here=True)
    grid = fig.data[0]
    assert grid.name == "try here" and grid.marker.opacity == 0
    assert len(grid.customdata) == 24 * 24
    assert all(c[0] == TRY_MARK for c in grid.customdata)
    lrs = sorted({c[1] for c in grid.customdata})
    assert 1e-4 < lrs[0] < 2e-4 and 0.6 < lrs[-1] < 1.0  # cell centres, log-spaced
    assert lrs[1] / lrs[0] == pytest.approx(lrs[-1] / lrs[-2])
    with_choice = pair_scatter(TRIALS, SPACE, "learning_rate", "batch_norm", try_here=True)
    assert {c[2] for c in with_choice.data[0].customdata} == {True, False}
    assert all(t.name != "try here" for t in pair_scatter(TRIALS, SPACE, "learning_rate",
                                                            "l2").data)


def test_try_params_from_a_click():
    empty_spot = {"selection": {"points": [{"customdata": [TRY_MARK, 0.05, 0.01]}]}}
    assert try_params(empty_spot, TRIALS, ("learning_rate", "l2")) == {
        "learning_rate": 0.05, "l2": 0.01, "batch_norm": False}  # the rest: the best trial's
    on_a_trial = {"selection": {"points": [{"customdata": [0, "complete"]}]}}
    assert try_params(on_a_trial, TRIALS, ("learning_rate", "l2")) == TRIALS[0]["params"]
    box = {"selection": {"points": [{"customdata": [0, "complete"]},
                                    {"customdata": [1, "complete"]}]}}
    assert try_params(box, TRIALS, ("learning_rate", "l2")) is None
    assert try_params(None, TRIALS) is None


def test_a_spot_picked_on_the_chart_fills_the_add_form(open_page, conn):
    study_id = fake_study(conn, 6, 2)
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view").set_value("Sampled points").run()
    no_exception(at)
    charts = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    assert any(d and d[0].get("name") == "try here" for d in charts)
    best = max(store.list_trials(conn, study_id), key=lambda t: t["best_val_acc"])
    at.session_state[TRY_KEY] = {**best["params"], "learning_rate": 0.0123}
    at.run()
    assert "Try here: learning_rate=0.0123" in at.info[-1].value
    at.segmented_control(key="study.view").set_value("Hands on").run()
    no_exception(at)
    inputs = {n.label: n.value for n in at.number_input}
    assert inputs["learning_rate"] == 0.0123
    assert inputs["l2"] == best["params"]["l2"]
    submit = next(b for b in at.button if b.label == "Add this trial and train it")
    submit.click().run()
    no_exception(at)
    added = store.list_trials(conn, study_id)[-1]
    assert added["origin"] == "user" and added["params"]["learning_rate"] == 0.0123
