"""Range filters per parameter (the parallel coordinates' linked selection): the checks, the
filter, the constraint ranges drawn on the parcoords axes, and every view narrowed by them."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from app.charts.search import parallel_coordinates
from app.views.ranges import checked_ranges, in_ranges, ranges_key
from engine.search import default_space
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

SPACE = default_space().to_dict()


def test_checked_ranges_keep_only_what_narrows_and_name_bad_input():
    assert checked_ranges(SPACE, {"learning_rate": (1e-3, 1e-2), "l2": (1e-6, 0.1),
                                  "batch_norm": [True, False]}) == {
        "learning_rate": {"low": 1e-3, "high": 1e-2}}
    assert checked_ranges(SPACE, {"batch_norm": [True]}) == {"batch_norm": {"options": [True]}}
    with pytest.raises(ValueError, match=r"learning_rate: 'from' \(0.1\) is above 'to' \(0.01\)"):
        checked_ranges(SPACE, {"learning_rate": (0.1, 0.01)})
    with pytest.raises(ValueError, match="learning_rate is on a log scale: 'from' must be above 0"):
        checked_ranges(SPACE, {"learning_rate": (0.0, 0.01)})
    with pytest.raises(ValueError, match="batch_norm: keep at least one option"):
        checked_ranges(SPACE, {"batch_norm": []})


def test_in_ranges():
    trial = {"params": {"learning_rate": 3e-3, "batch_norm": False}}
    assert in_ranges(trial, None) and in_ranges(trial, {})
    assert in_ranges(trial, {"learning_rate": {"low": 1e-3, "high": 1e-2}})
    assert not in_ranges(trial, {"learning_rate": {"low": 1e-2, "high": 1e-1}})
    assert not in_ranges(trial, {"batch_norm": {"options": [True]}})
    assert not in_ranges({"params": {}}, {"learning_rate": {"low": 0, "high": 1}})


def test_parcoords_draws_the_ranges_on_its_axes():
    trials = [{"number": 0, "best_val_acc": 0.9, "params": {
        "learning_rate": 1e-3, "beta1": 0.9, "hidden_units": 16, "batch_norm": True, "l2": 1e-4}}]
    ranges = {"learning_rate": {"low": 1e-3, "high": 1e-2}, "beta1": {"low": 0.9, "high": 0.99},
              "hidden_units": {"low": 10, "high": 40}, "batch_norm": {"options": [False]}}
    dims = {d.label: d for d in parallel_coordinates(trials, SPACE, ranges=ranges).data[0]
            .dimensions}
    assert list(dims["learning_rate (log)"].constraintrange) == pytest.approx([-3, -2])
    assert list(dims["1 - beta1 (log)"].constraintrange) == pytest.approx([-2, -1])  # 1 - beta
    assert list(dims["hidden_units (log)"].constraintrange) == pytest.approx(
        [math.log10(10), math.log10(40)])
    assert [list(r) for r in dims["batch_norm"].constraintrange] == [[0.75, 1.25]]  # "False"
    assert dims["l2 (log)"].constraintrange is None  # no range: no constraint
    plain = parallel_coordinates(trials, SPACE).data[0].dimensions
    assert all(d.constraintrange is None for d in plain)


def _count(values) -> int:
    """How many values a figure JSON array holds (plain list or Plotly's base64 ``bdata``)."""
    if isinstance(values, dict):
        return len(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]))
    return len(values)


def _parcoords(at) -> dict:
    for chart in at.get("plotly_chart"):
        data = json.loads(chart.proto.spec)["data"]
        if data and data[0]["type"] == "parcoords":
            return data[0]
    raise AssertionError("no parallel-coordinates chart on the page")


def test_ranges_filter_every_view_and_show_on_the_axes(open_page, conn):
    study_id = fake_study(conn, 12, 3)
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view").set_value("Parallel coordinates").run()
    no_exception(at)
    assert _count(_parcoords(at)["dimensions"][0]["values"]) == 12
    at.number_input(key=f"ranges.{study_id}.learning_rate.low").set_value(1e-3)
    at.number_input(key=f"ranges.{study_id}.learning_rate.high").set_value(1e-1)
    at.button(key=f"ranges.apply.{study_id}").click().run()
    no_exception(at)
    assert at.session_state[ranges_key(study_id)] == {
        "learning_rate": {"low": 1e-3, "high": 1e-1}}
    from engine.storage import studies as store

    inside = sorted(t["number"] for t in store.list_trials(conn, study_id)
                    if 1e-3 <= t["params"]["learning_rate"] <= 1e-1)
    assert 0 < len(inside) < 12
    assert f"Showing {len(inside)} of 12 trials" in at.info[0].value
    assert "learning_rate 0.001..0.1" in at.info[0].value
    lines = _parcoords(at)
    assert _count(lines["dimensions"][0]["values"]) == len(inside)
    assert lines["dimensions"][0]["constraintrange"] == pytest.approx([-3, -1])
    at.segmented_control(key="study.view").set_value("Trials").run()
    assert sorted(at.dataframe[0].value["trial"]) == inside
    at.button(key=f"selection.clear.{study_id}").click().run()
    assert len(at.dataframe[0].value) == 12


def test_a_reversed_range_gets_a_message_naming_it(open_page, conn):
    study_id = fake_study(conn, 8, 2)
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view").set_value("Parallel coordinates").run()
    at.number_input(key=f"ranges.{study_id}.l2.low").set_value(0.01)
    at.number_input(key=f"ranges.{study_id}.l2.high").set_value(0.001)
    at.button(key=f"ranges.apply.{study_id}").click().run()
    no_exception(at)
    assert "l2: 'from' (0.01) is above 'to' (0.001)" in at.error[0].value
    assert not at.session_state[ranges_key(study_id)] if ranges_key(study_id) in \
        at.session_state else True
