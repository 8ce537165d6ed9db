"""The study page over a study of sick nets trained for real by the study runner: the summary
counts the flags, the trials table and the trial's health curves show them, and the sampled
points can be coloured by a flag."""

from __future__ import annotations

import json

import pytest

from tests.app.conftest import no_exception
from tests.engine.study.sick import sick_study


@pytest.fixture
def sick(app_db):
    return sick_study(app_db)


def show(at, view: str):
    at.segmented_control(key="study.view").set_value(view).run()
    no_exception(at)
    return at


def test_the_summary_counts_the_sick_trials(open_page, sick):
    at = open_page("studies", study=sick)
    no_exception(at)
    text = " ".join(w.value for w in at.warning)
    assert ("1 trial with exploding gradients · 2 trials with dead ReLUs · "
            "1 trial with saturated softmax") in text


def test_trials_table_and_health_curves_show_the_flags(open_page, sick):
    at = show(open_page("studies", study=sick), "Trials")
    table = at.dataframe[0].value
    by_lr = {row["learning_rate"]: row for _, row in table.iterrows()}
    assert by_lr[0.01]["flags"] == ""
    assert by_lr[3.0]["flags"] == "exploding gradients, dead ReLUs"
    assert by_lr[30.0]["flags"] == "dead ReLUs, saturated softmax"
    assert all(row["grad norm"] > 0 for row in by_lr.values())  # its last measured epoch
    pick = at.selectbox(key="trials.health_pick")
    assert pick.value["flags"]
    assert pick.index == 0 and "2 flag(s)" in pick.options[0]  # the first flagged trial
    errors = [e.value for e in at.error]
    assert errors == [f["text"] for f in pick.value["flags"]]
    assert any("dead ReLUs in layer" in e for e in errors), errors
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    layers = [t for t in chart["data"] if t.get("name", "").startswith("layer")]
    assert len(layers) >= 3
    pick.select_index(2).run()  # the exploding one (learning rate 3)
    assert any("exploding gradients from epoch" in e.value for e in at.error)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    layers = [t for t in chart["data"] if t.get("name", "").startswith("layer")]
    assert max(max(t["y"]) for t in layers if t["y"]) > 1e3


def test_sampled_points_coloured_by_a_flag(open_page, sick):
    at = show(open_page("studies", study=sick), "Sampled points")
    picker = at.segmented_control(key="points.colour")
    assert picker.options[:2] == ["the score", "any flag"]
    picker.set_value("dead_relus").run()
    no_exception(at)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = sorted(t["name"] for t in chart["data"])
    assert names == ["dead ReLUs (2)", "without dead ReLUs (1)"]
