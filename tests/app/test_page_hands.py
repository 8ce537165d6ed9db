"""The study page's "Hands on" and "Importance" views, and the babysit page's return to the
study (AppTest, no browser)."""

from __future__ import annotations

import json
import time

import pytest

from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study


@pytest.fixture
def resumed(monkeypatch):
    """Record the runner starts the page asks for instead of spawning real runners."""
    calls = []
    monkeypatch.setattr("engine.study.facade.resume_study",
                        lambda db, study_id: calls.append(study_id))
    return calls


def hands(open_page, study_id):
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view").set_value("Hands on").run()
    no_exception(at)
    return at


def submit(at, label: str):
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    no_exception(at)
    return at


def test_add_a_trial_from_the_form(open_page, conn, resumed):
    study_id = fake_study(conn, 10, 4)
    at = hands(open_page, study_id)
    at.number_input(key="hands.add.learning_rate.-1").set_value(0.02)
    at = submit(at, "Add this trial and train it")
    assert not at.error, [e.value for e in at.error]
    trial = store.list_trials(conn, study_id)[-1]
    assert (trial["number"], trial["origin"], trial["params"]["learning_rate"]) == (10, "user",
                                                                                   0.02)
    assert resumed == [study_id]  # the runner is started to train it
    assert "Trial added" in at.success[0].value


def test_the_confirmation_outlives_the_live_redraws(open_page, conn, resumed, monkeypatch):
    study_id = fake_study(conn, 10, 4)
    at = hands(open_page, study_id)
    at = submit(at, "Add this trial and train it")
    at.run()  # a live redraw of a running study's view, a second later
    assert "Trial added" in at.success[0].value
    later = time.monotonic() + 60
    monkeypatch.setattr("app.views.actions._now", lambda: later)
    at.run()  # long after: the note is gone
    assert not [s for s in at.success if "Trial added" in s.value]


def test_a_value_outside_the_space_is_a_clear_message(open_page, conn, resumed):
    study_id = fake_study(conn, 10, 4)
    at = hands(open_page, study_id)
    at.number_input(key="hands.add.learning_rate.-1").set_value(5.0)
    at = submit(at, "Add this trial and train it")
    assert "Could not add the trial: learning_rate" in at.error[0].value
    assert len(store.list_trials(conn, study_id)) == 10 and resumed == []


def test_clone_stop_rank_and_notes(open_page, conn, resumed):
    study_id = fake_study(conn, 12, 4, finished=9, status="stopped")
    at = hands(open_page, study_id)
    at.selectbox(key="hands.clone_from").set_value(3).run()
    at = submit(at, "Add this trial and train it")
    clone = store.list_trials(conn, study_id)[-1]
    assert clone["source"]["number"] == 3 and clone["name"] == "clone of trial 3"
    at.selectbox(key="hands.stop_pick").set_value(10).run()
    at.button(key="hands.stop").click().run()
    assert store.list_trials(conn, study_id)[10]["state"] == "cancelled"
    at.segmented_control(key="hands.rank").set_value("last").run()
    assert store.get_study(conn, study_id)["rank"] == {"at": "last"}
    at.text_area(key="hands.meta.notes").set_value("wider lr next")
    at = submit(at, "Save name and notes")
    assert store.get_study(conn, study_id)["notes"] == "wider lr next"
    assert [r["trial"] for r in at.dataframe[-1].value.to_dict("records")] \
        == [12]


def test_importance_view_draws_the_bars_and_orders_the_axes(open_page, conn):
    study_id = fake_study(conn, 30, 3)
    at = open_page("studies", study=study_id)
    at.segmented_control(key="study.view").set_value("Importance").run()
    no_exception(at)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bars = charts[0]["data"][0]
    names = list(store.get_study(conn, study_id)["space"]["params"])
    assert bars["type"] == "bar" and sorted(bars["y"]) == sorted(names)
    assert abs(sum(bars["x"]) - 1) < 1e-6
    most = bars["y"][-1]  # the longest bar is drawn on top
    assert charts[1]["data"][0]["dimensions"][0]["label"].startswith(most)


def test_babysat_model_returns_to_its_study(open_page, app_db, resumed):
    from engine.run.work import run_segment
    from engine.storage.db import connect
    from engine.study.roundtrip import fork_trial
    from tests.engine.study.helpers import run_fake
    from tests.engine.study.test_actions import make_study

    conn = connect(app_db)
    study_id = make_study(app_db, n_trials=1, epochs=2)
    assert run_fake(app_db, study_id, work_fn=run_segment) == "complete"
    session_id = fork_trial(conn, store.list_trials(conn, study_id)[0]["id"])
    at = open_page("babysit", session=session_id)
    no_exception(at)
    at.button(key="roundtrip.return").click().run()
    no_exception(at)
    trials = store.list_trials(conn, study_id)
    assert len(trials) == 2 and trials[1]["origin"] == "session"
    assert trials[1]["source"]["session_id"] == session_id


def test_an_archived_study_leaves_the_picker_but_opens_by_its_url(open_page, conn):
    from engine.study import actions

    kept, hidden = fake_study(conn, 3, 2, name="kept"), fake_study(conn, 3, 2, name="hidden")
    actions.act(conn, hidden, "archive", {"archived": True})
    at = open_page("studies")
    assert [o for o in at.selectbox[0].options if "hidden" in o] == []
    at = open_page("studies", study=hidden)
    no_exception(at)
    assert at.selectbox[0].value == hidden and kept
