"""The live study's Belief view (AppTest), the designer's learning samplers, and the Compare
page's random vs zoom vs gp."""

from __future__ import annotations

import json

import pytest

from engine.search import Objective, Space, history_from_rows, sampler_from_dict
from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study


def learning_study(conn, kind: str, n_trials: int = 24) -> int:
    sampler = {"kind": kind} if kind != "zoom" else {"kind": "zoom", "first_round": 8,
                                                      "round_size": 4}
    study_id = fake_study(conn, n_trials, 4, sampler=sampler)
    study = store.get_study(conn, study_id)
    trials, metrics = store.study_trials_and_metrics(conn, study_id)
    history = history_from_rows(trials, metrics, Objective.from_dict(study["objective"]),
                                seed=study["seed"])
    belief = sampler_from_dict(study["sampler"]).describe(Space.from_dict(study["space"]),
                                                          history)
    store.set_study_belief(conn, study_id, belief)
    return study_id


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.mark.parametrize("kind", ["gp", "tpe"])
def test_belief_shows_a_slice_per_parameter(open_page, conn, kind):
    study_id = learning_study(conn, kind)
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view.learns").set_value("Belief").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    figure = charts(at)[-1]
    names = {t.get("name") for t in figure["data"]}
    assert {"observed trials", "predicted score", "band (2 sd)"} <= names
    n_params = len(store.get_study(conn, study_id)["space"]["params"])
    assert sum(t.get("name") == "observed trials" for t in figure["data"]) == n_params
    assert figure["layout"]["xaxis"]["type"] == "log"  # the demo space's learning rate
    assert any("held at the best trial" in c.value for c in at.caption)
    # the caption is a sentence: it read "gaussian process (mean, 2 sd band) of the score ..."
    start = {"gp": "Gaussian process (mean", "tpe": "Parzen-smoothed scores"}[kind]
    assert any(c.value.startswith(start) for c in at.caption), [c.value for c in at.caption]


def test_zoom_belief_draws_the_rounds(open_page, conn):
    study_id = learning_study(conn, "zoom")
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view.learns").set_value("Belief").run()
    no_exception(at)
    names = [t.get("name") for t in charts(at)[-1]["data"]]
    assert "round 1 box" in names and "round 4 box" in names
    table = at.dataframe[-1].value
    assert list(table["round"]) == [0, 1, 2, 3, 4]


def test_no_belief_yet_and_none_for_random(open_page, conn):
    study_id = fake_study(conn, 6, 3, sampler={"kind": "gp"})
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view.learns").set_value("Belief").run()
    no_exception(at)
    assert "has not learned anything yet" in at.info[-1].value
    random_id = fake_study(conn, 6, 3)
    at = open_page("studies", study=random_id)
    assert "Belief" not in at.segmented_control(key="study.view").options


def test_designer_offers_the_learning_samplers_with_a_sentence(open_page):
    at = open_page("designer")
    previews = len(at.get("plotly_chart"))
    for kind, words in [("gp", "Gaussian process"), ("tpe", "Parzen"), ("zoom", "smaller boxes")]:
        at.segmented_control(key="designer.sampler").set_value(kind).run()
        no_exception(at)
        assert any(words in c.value for c in at.caption), kind
        assert len(at.get("plotly_chart")) == previews  # where its first points land
        assert not at.button(key="designer.launch").disabled, [w.value for w in at.warning]


def test_compare_launches_random_zoom_and_gp_at_equal_budget(open_page, conn, monkeypatch):
    from engine import study as studies

    monkeypatch.setattr(studies, "start_study", lambda db, study_id: None)
    at = open_page("compare")
    at.button(key="compare.rzg").click().run()
    no_exception(at)
    launched = store.list_studies(conn)
    assert sorted(s["sampler"]["kind"] for s in launched) == ["gp", "random", "zoom"]
    assert {s["n_trials"] for s in launched} == {24}
    assert {json.dumps(s["space"], sort_keys=True) for s in launched} == {
        json.dumps(launched[0]["space"], sort_keys=True)}
    assert at.query_params["studies"] == ",".join(str(s["id"]) for s in reversed(launched))
