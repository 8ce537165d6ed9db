"""Linked selection: the pure filters, and every view of the study page narrowed by it."""

from __future__ import annotations

import json

from app.views.selection import filter_metrics, filter_trials, narrow_metrics, picked
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

TRIALS = [{"number": i, "best_val_acc": None if i == 4 else i / 10} for i in range(5)]


def test_picked_reads_trial_numbers_from_a_plotly_selection():
    event = {"selection": {"points": [{"customdata": [3, "complete"]}, {"customdata": [1]},
                                      {"customdata": [3, "complete"]}, {"x": 1}]}}
    assert picked(event) == [1, 3] and picked(None) == [] and picked({}) == []


def test_filter_by_selection_and_top_percent():
    assert [t["number"] for t in filter_trials(TRIALS, None, 100)] == [0, 1, 2, 3, 4]
    assert [t["number"] for t in filter_trials(TRIALS, [1, 3, 4], 100)] == [1, 3, 4]
    assert [t["number"] for t in filter_trials(TRIALS, None, 50)] == [2, 3]
    assert [t["number"] for t in filter_trials(TRIALS, [0, 1], 10)] == [1]
    metrics = {"number": [0, 0, 1, 2], "epoch": [1, 2, 1, 1], "val_acc": [.1, .2, .3, .4]}
    assert filter_metrics(metrics, {0, 2}) == {"number": [0, 0, 2], "epoch": [1, 2, 1],
                                                "val_acc": [.1, .2, .4]}


def test_narrow_metrics_keeps_all_when_every_trial_is_shown():
    metrics = {"number": [0, 1, 2], "epoch": [1, 1, 1]}
    study = {"counts": {"complete": 3}}
    assert narrow_metrics(study, [{"number": n} for n in range(3)], metrics) == metrics
    assert narrow_metrics(study, [{"number": 1}], metrics) == {"number": [1], "epoch": [1]}


def test_a_selection_narrows_the_table_the_curves_and_the_points(open_page, conn):
    study_id = fake_study(conn, 10, 3)
    at = open_page("studies", study=study_id)
    at.session_state[f"selection.{study_id}"] = [2, 5, 7]
    at.run()
    no_exception(at)
    assert "Showing 3 of 10 trials" in at.info[0].value
    points = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]  # each param vs score
    assert sorted({c[0] for trace in points for c in trace.get("customdata") or []}) == [2, 5, 7]
    at.segmented_control(key="study.view").set_value("Trials").run()
    assert sorted(at.dataframe[0].value["trial"]) == [2, 5, 7]
    at.number_input(key=f"selection.top.{study_id}").set_value(40).run()
    assert len(at.dataframe[0].value) == 1
    at.button(key=f"selection.clear.{study_id}").click().run()
    assert len(at.dataframe[0].value) == 4  # the best 40% of all 10
