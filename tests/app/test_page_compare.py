"""Compare searches: studies side by side, chosen through the URL; grid vs random in one click."""

from __future__ import annotations

import json

from engine.search import Float, Space
from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study

SPACE = Space({"learning_rate": Float(1e-4, 1.0, "log"), "dropout": Float(0.0, 0.3)})


def test_needs_two_studies(open_page, conn):
    at = open_page("compare")
    no_exception(at)
    assert "at least two studies" in at.info[0].value
    assert at.button(key="compare.gvr")


def test_two_studies_side_by_side(open_page, conn):
    a = fake_study(conn, 9, 4, name="A", space=SPACE)
    b = fake_study(conn, 9, 4, name="B", space=SPACE, seed=2)
    fake_study(conn, 3, 2, name="C")
    at = open_page("compare", studies=f"{a},{b}")
    no_exception(at)
    assert at.multiselect[0].value == [a, b]
    summary = at.dataframe[0].value
    assert list(summary["study"]) == [f"#{a} A", f"#{b} B"]
    # what is compared comes first: at 1,024 px the table scrolls sideways and hid its last
    # column, the score
    assert list(summary.columns[:2]) == ["study", "best validation accuracy"]
    budget, distinct, points = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert [t["name"] for t in budget["data"]] == [f"#{a} A", f"#{b} B"]
    assert [t["x"] for t in distinct["data"]] == [[9, 9], [9, 9]]
    assert points["layout"]["xaxis"]["type"] == "log"
    at.segmented_control(key="compare.budget").set_value("seconds").run()
    no_exception(at)
    assert "wall time" in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"][
        "title"]["text"]


def test_one_study_is_not_a_comparison(open_page, conn):
    a = fake_study(conn, 3, 2, name="A")
    fake_study(conn, 3, 2, name="B")
    at = open_page("compare", studies=str(a))
    at.multiselect[0].set_value([a]).run()
    assert "at least two" in at.warning[0].value


def test_grid_vs_random_launches_two_equal_budget_studies(open_page, conn):
    at = open_page("compare")
    at.button(key="compare.gvr").click().run()
    no_exception(at)
    studies = store.list_studies(conn)
    assert sorted(s["sampler"]["kind"] for s in studies) == ["grid", "random"]
    assert {s["n_trials"] for s in studies} == {9}
    assert at.query_params["studies"] == ",".join(str(s["id"]) for s in reversed(studies))
    assert len(at.get("plotly_chart")) == 3


def test_same_names_stay_apart_and_other_data_or_unknown_ids_are_said(open_page, conn):
    """QA: two demo studies were both 'Demo: random search on digits' in every legend; a
    digits study beside a spirals one compared scores silently; ?studies=99 was ignored."""
    a = fake_study(conn, 4, 2, name="Demo", space=SPACE)
    b = fake_study(conn, 4, 2, name="Demo", space=SPACE, seed=1)
    at = open_page("compare", studies=f"{a},{b},99")
    no_exception(at)
    assert [w.value for w in at.warning] == ["There is no study #99 in this database."]
    budget, distinct, points = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    for chart in (budget, distinct, points):
        assert [t["name"] for t in chart["data"]] == [f"#{a} Demo", f"#{b} Demo"]
    assert distinct["layout"]["legend"]["y"] < 0  # under the bars, not over them
    c = fake_study(conn, 4, 2, name="Spirals", space=SPACE,
                   dataset={"kind": "spirals", "n_samples": 300, "n_classes": 3})
    at = open_page("compare", studies=f"{a},{c}")
    no_exception(at)
    (warning,) = [w.value for w in at.warning]
    assert "learn different data" in warning and "spirals" in warning
    assert list(at.dataframe[0].value["data"]) == [
        "moons (200 samples, noise 0.2)", "spirals (300 samples, 3 classes, noise 0.1)"]
