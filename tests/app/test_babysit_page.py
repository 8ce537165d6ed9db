"""Babysit page in AppTest: start, run, roll back, knobs, adopt, and bad input."""

from __future__ import annotations

import streamlit as st

from engine import babysit
from engine.babysit.commands import apply
from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.panda_helpers import (
    MOONS,
    button,
    chart_specs,
    curves_spec,
    metric,
    poll,
    trace_names,
    trained_session,
    trained_trial,
    widget,
)


def test_no_session_offers_start_and_adopt(open_page):
    at = open_page("babysit")
    no_exception(at)
    assert not at.error
    assert [t.label for t in at.tabs] == ["Start from scratch", "Babysit a trial of a study"]
    assert button(at, "Start the session")
    assert widget(at, "select_slider", "Learning rate (log scale)").value == 0.01
    assert "No study yet" in " ".join(i.value for i in at.info)


def test_start_from_scratch_and_run_an_epoch(open_page, conn):
    at = open_page("babysit")
    widget(at, "text_input", "Hidden layers (units)").set_value("8, 8")
    button(at, "Start the session").click().run()
    no_exception(at)
    assert at.query_params["session"] == "1"
    assert metric(at, "Epoch") == "0" and metric(at, "Status") == "idle"
    button(at, "Run 1 epoch").click().run()
    poll(at, lambda a: metric(a, "Epoch") == "1" and metric(a, "Status") == "idle")
    no_exception(at)
    spec = curves_spec(at)
    assert len([n for n in trace_names(spec) if n.startswith("branch 0")]) == 5
    val = next(t for t in spec["data"] if t["name"].startswith("branch 0 val loss"))
    assert val["x"] == [0, 1] and val["y"][1] > 0
    assert babysit.session_view(conn, 1)["head_epoch"] == 1  # the runner wrote it
    boundary = next(s for s in chart_specs(at) if s["data"][0].get("type") == "contour")
    assert "Decision boundary at epoch 1" in " ".join(m.value for m in at.markdown)
    assert len(boundary["data"]) == 4  # probability contour, 0.5 line, one scatter per class


def test_rollback_creates_a_branch_in_the_curves(open_page, conn):
    session_id = trained_session(conn, epochs=3)
    at = open_page("babysit", session=session_id)
    no_exception(at)
    targets = {t["epoch"]: t["node_id"] for t in babysit.session_view(conn, session_id)[
        "rollback_targets"]}
    at.selectbox(key=f"rb_{session_id}").set_value(targets[1])
    button(at, "Roll back").click().run()
    poll(at, lambda a: metric(a, "Branch") == "1")
    no_exception(at)
    assert metric(at, "Epoch") == "1"
    names = trace_names(curves_spec(at))
    assert any(n.startswith("branch 0 val loss (abandoned)") for n in names)
    assert any(n.startswith("branch 1 val loss (current)") for n in names)
    assert "rollback" in names
    faded = [t for t in curves_spec(at)["data"] if "(abandoned)" in t.get("name", "")]
    assert faded and all(t["opacity"] < 1 for t in faded)


def test_changing_the_learning_rate_is_recorded(open_page, conn):
    session_id = trained_session(conn, epochs=1)
    at = open_page("babysit", session=session_id)
    widget(at, "select_slider", "Learning rate (log scale)").set_value(0.5)
    button(at, "Apply knobs").click().run()
    no_exception(at)
    poll(at, lambda a: metric(a, "Learning rate") == "0.5")
    assert babysit.session_view(conn, session_id)["config"]["learning_rate"] == 0.5
    assert "you changed learning\\_rate: 0\\.01 → 0\\.5" in " ".join(m.value for m in at.markdown)


def test_invalid_knob_values_give_a_clear_message(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    widget(at, "selectbox", "Learning-rate decay").set_value("exponential")
    button(at, "Apply knobs").click().run()
    no_exception(at)
    assert len(at.error) == 1
    assert "Could not change the knobs" in at.error[0].value
    assert "decay_rate" in at.error[0].value and "(0, 1]" in at.error[0].value
    assert babysit.session_view(conn, session_id)["config"]["decay"] == "none"  # nothing sent
    # Nothing lost: the session is still there and still works.
    assert metric(at, "Status") == "idle"


def test_bad_architecture_and_unknown_session(open_page):
    at = open_page("babysit")
    widget(at, "text_input", "Hidden layers (units)").set_value("16, lots")
    button(at, "Start the session").click().run()
    no_exception(at)
    assert "hidden layers must be comma-separated whole numbers" in at.error[0].value
    assert "session" not in at.query_params
    at = open_page("babysit", session=99)
    no_exception(at)
    assert "no babysitting session #99" in at.error[0].value


def test_adopt_a_trial(open_page, conn):
    trial_id, _ = trained_trial(conn, epochs=2)
    at = open_page("babysit")
    at.selectbox(key="adopt_trial").set_value(trial_id)
    button(at, "Babysit this one").click().run()
    no_exception(at)
    session_id = int(at.query_params["session"])
    view = babysit.session_view(conn, session_id)
    assert view["source_trial_id"] == trial_id and view["head_epoch"] == 2
    assert metric(at, "Epoch") == "2"
    trial = store.get_trial(conn, trial_id)  # the number the study pages show, not the id
    assert (f"adopted from trial {trial['number']} of study #{trial['study_id']}"
            in " ".join(c.value for c in at.caption))


def test_auto_babysitter_toggle(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    at.toggle[0].set_value(True)
    widget(at, "number_input", "k epochs").set_value(2)
    button(at, "Apply").click().run()
    no_exception(at)
    poll(at, lambda a: babysit.session_view(conn, session_id)["auto"]["enabled"])
    assert babysit.session_view(conn, session_id)["auto"]["patience"] == 2
    assert babysit.session_view(conn, session_id)["auto"]["on_flags"] is True


def test_auto_babysitter_can_leave_the_health_flags_alone(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    widget(at, "toggle", "on").set_value(True)
    widget(at, "toggle", "act on health flags").set_value(False)
    button(at, "Apply").click().run()
    no_exception(at)
    poll(at, lambda a: babysit.session_view(conn, session_id)["auto"]["enabled"])
    assert babysit.session_view(conn, session_id)["auto"]["on_flags"] is False


def test_a_new_server_shows_the_same_session(open_page, conn):
    """Everything lives in SQLite: a fresh app (new caches, new session state) after a
    rollback shows the same head, branches and event log."""
    session_id = trained_session(conn, epochs=3)
    babysit.execute(conn, session_id, "rollback", {"epoch": 2})
    st.cache_resource.clear()
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert (metric(at, "Epoch"), metric(at, "Branch")) == ("2", "1")
    names = trace_names(curves_spec(at))
    assert "branch 0 val loss (abandoned)" in names and "branch 1 val loss (current)" in names


def test_a_run_whose_runner_died_can_be_resumed(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    apply(conn, session_id, "run", {"epochs": 2})  # status running, but no runner: it "died"
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert any("runner stopped" in w.value for w in at.warning)
    button(at, "Resume the runner").click().run()
    poll(at, lambda a: metric(a, "Epoch") == "2" and metric(a, "Status") == "idle")
    assert not at.warning


def test_divergence_is_explained_not_a_traceback(open_page, conn):
    session_id = babysit.new_session(
        conn, name="too fast", model={"hidden": [8], "batch_norm": False}, dataset=MOONS,
        config={"learning_rate": 1e4, "optimizer": "sgd"}, seed=0)
    babysit.execute(conn, session_id, "run", {"epochs": 2})
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert metric(at, "Status") == "diverged"
    assert "turn the learning rate down" in at.warning[0].value
    assert "loss became" in at.warning[0].value  # the engine's own words: which epoch, which rate


def test_run_until_paused_then_pause(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    button(at, "Run until paused").click().run()
    poll(at, lambda a: metric(a, "Status") == "running" and int(metric(a, "Epoch")) >= 2)
    button(at, "Pause").click().run()
    poll(at, lambda a: metric(a, "Status") == "paused")
    no_exception(at)
    epoch = babysit.session_view(conn, session_id)["head_epoch"]
    assert epoch >= 2
    assert babysit.session_view(conn, session_id)["head_epoch"] == epoch  # it stays paused


def test_a_loss_that_explodes_without_nan_gets_a_warning(open_page, conn):
    """QA: Adam with batch norm at a learning rate of 10 took the validation loss from 0.07 to
    2,000 with no NaN, so the page showed status 'idle' and said nothing."""
    session_id = trained_session(conn, epochs=3)
    at = open_page("babysit", session=session_id)
    assert not at.warning
    babysit.execute(conn, session_id, "set", {"learning_rate": 10.0})
    babysit.execute(conn, session_id, "run", {"epochs": 1})
    view = babysit.session_view(conn, session_id)
    assert view["status"] == "idle" and view["best"]["epoch"] <= 3  # finite: not "diverged"
    at = open_page("babysit", session=session_id)
    no_exception(at)
    (warning,) = [w.value for w in at.warning]
    assert "The validation loss jumped to" in warning
    assert f"Roll back to epoch {view['best']['epoch']}" in warning and "(10)" in warning


def test_loss_jump_thresholds():
    from app.charts.babysit import loss_jump

    best = {"node_id": 3, "epoch": 3, "val_loss": 0.07}
    assert loss_jump(None, best, 1.0) == "" and loss_jump(5.0, None, 1.0) == ""
    assert loss_jump(0.5, best, 1.0) == ""  # 7 times the best: a bad epoch, not a blow-up
    assert loss_jump(0.02, {**best, "val_loss": 0.001}, 1.0) == ""  # 20x but tiny
    assert "2,857 times its best (0.07 at epoch 3)" in loss_jump(200.0, best, 10.0)


def test_knobs_form_repairs_a_session_left_at_learning_rate_zero(open_page, conn):
    # What the old babysitter left behind: a stored learning rate of 0.0 (which cannot train).
    session_id = trained_session(conn, epochs=1)
    sessions = babysit.session_view(conn, session_id)["config"]
    from engine.storage import sessions as session_store
    session_store.update_session(conn, session_id, config={**sessions, "learning_rate": 0.0})
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert any("cannot train" in w.value for w in at.warning)
    slider = widget(at, "select_slider", "Learning rate (log scale)")
    slider.set_value(0.001)
    button(at, "Apply knobs").click().run()
    no_exception(at)
    poll(at, lambda a: babysit.session_view(conn, session_id)["config"]["learning_rate"]
         == 0.001)


def test_a_paused_session_says_why_the_babysitter_gave_up(open_page, conn):
    session_id = babysit.new_session(
        conn, name="hopeless", model={"hidden": [16], "batch_norm": False}, dataset=MOONS,
        config={"learning_rate": 1e4, "optimizer": "sgd", "batch_size": 32}, seed=0,
        auto={"enabled": True, "factor": 0.1, "min_learning_rate": 100.0},
    )
    babysit.execute(conn, session_id, "run", {"epochs": 10})
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert metric(at, "Status") == "paused"
    assert any("gave up" in w.value and "floor" in w.value for w in at.warning)
    assert "the babysitter gave up" in " ".join(m.value for m in at.markdown)


def test_lr_choice_keeps_a_usable_rate_and_replaces_one_that_cannot_train():
    from app.panda_forms import lr_choice
    options, value, note = lr_choice(3e-4)
    assert value == 3e-4 and value in options and note == ""
    for bad in (0.0, -1.0, float("nan"), None):
        options, value, note = lr_choice(bad)
        assert value == options[0] == 1e-6 and "cannot train" in note


def test_a_model_too_large_is_refused_in_the_form_with_the_limit(open_page, conn):
    at = open_page("babysit")
    hidden = widget(at, "text_input", "Hidden layers (units)")
    assert "5,000,000 parameters" in hidden.help
    hidden.set_value(", ".join(["4096"] * 7))
    button(at, "Start the session").click().run()
    no_exception(at)
    assert any("model too large" in e.value and "the limit is 5,000,000" in e.value
               for e in at.error)
    assert babysit.list_sessions(conn) == []


def test_a_new_session_shows_empty_axes_at_0_to_100_percent(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    no_exception(at)
    spec = curves_spec(at)
    assert spec["layout"]["yaxis2"]["range"] == [0, 1.02]  # was autorange: -100% .. 400%
    assert any("No epoch trained yet" in a["text"] for a in spec["layout"]["annotations"])


def test_an_adopted_trial_rolls_back_into_its_own_history_at_once(open_page, conn):
    """No 'Train an epoch first': the trial's epochs are targets, rebuilt by the runner."""
    trial_id, _ = trained_trial(conn, epochs=3)
    session_id = babysit.adopt_trial(conn, trial_id)
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert not any("Train an epoch first" in c.value for c in at.caption)
    picker = at.selectbox(key=f"rb_{session_id}")
    labels = list(picker.options)
    assert len(labels) == 3 and all("rebuilt on rollback" in x for x in labels)  # epochs 0-2
    targets = {t["epoch"]: t["node_id"]
               for t in babysit.session_view(conn, session_id)["rollback_targets"]}
    picker.set_value(targets[1])
    button(at, "Roll back").click().run()
    poll(at, lambda a: metric(a, "Branch") == "1")
    no_exception(at)
    assert metric(at, "Epoch") == "1"
    view = babysit.session_view(conn, session_id)
    assert view["head_epoch"] == 1 and view["status"] != "failed"


def test_a_pace_for_watching_is_off_by_default_and_reaches_the_runner(open_page, conn):
    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    no_exception(at)
    pace = at.select_slider(key=f"pace_{session_id}")
    assert pace.value == 0 and babysit.session_view(conn, session_id)["pace"] is None
    pace.set_value(2).run()
    no_exception(at)
    poll(at, lambda a: babysit.session_view(conn, session_id)["pace"] == 2.0)  # the runner's
    # the event log, once a rerun drew it after the runner applied the pace
    poll(at, lambda a: any("set the pace to 2 epoch" in m.value for m in a.markdown))
    assert at.select_slider(key=f"pace_{session_id}").value == 2
    at.select_slider(key=f"pace_{session_id}").set_value(0).run()
    poll(at, lambda a: babysit.session_view(conn, session_id)["pace"] is None)


def test_moving_the_pace_as_the_stored_one_changes_keeps_the_persons_choice(open_page, conn):
    """The stored pace moving (the runner applying an earlier choice) in the same rerun as a
    move of the slider used to reset the slider to the stored value: the move was lost."""
    from engine.babysit.commands import execute

    session_id = trained_session(conn, epochs=0)
    at = open_page("babysit", session=session_id)
    execute(conn, session_id, "pace", {"epochs_per_second": 2})  # lands while the page idles
    at.select_slider(key=f"pace_{session_id}").set_value(5).run()
    no_exception(at)
    assert at.select_slider(key=f"pace_{session_id}").value == 5
    poll(at, lambda a: babysit.session_view(conn, session_id)["pace"] == 5.0)


def test_a_command_the_runner_refused_says_so_beside_the_controls(open_page, conn):
    """A rollback the runner could not apply (e.g. an earlier epoch it could not rebuild) was
    one line deep in the event log: the page looked as if the click did nothing."""
    from engine.babysit.commands import record_rejected

    session_id = trained_session(conn, 2)
    record_rejected(conn, session_id, "rollback", {"epoch": 1},
                    "rollback: epoch 1 of the adopted trial cannot be rebuilt")
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert [e.value for e in at.error] == [
        "The last rollback was not applied: epoch 1 of the adopted trial cannot be rebuilt"]
    log = " ".join(m.value for m in at.markdown)
    assert "rejected: rollback: epoch 1" in log and "rollback: rollback" not in log
    babysit.execute(conn, session_id, "run", {"epochs": 1})  # a later command clears it
    at.run()
    assert not at.error


def test_a_name_typed_a_minute_before_starting_is_kept(open_page, conn, monkeypatch):
    """The Name box's default is the time to the minute: when the minute turned between
    typing and "Start the session", the box was a new widget and the session got the
    default name instead of the one typed."""
    import datetime as real

    import app.panda_forms as forms

    clock = iter(real.datetime(2026, 12, 6, 21, m) for m in range(40, 60))

    class Ticking(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return next(clock)

    monkeypatch.setattr(forms, "datetime", Ticking)
    at = open_page("babysit")
    widget(at, "text_input", "Name").set_value("my first model")
    widget(at, "text_input", "Hidden layers (units)").set_value("8, 8")
    button(at, "Start the session").click().run()
    no_exception(at)
    assert babysit.session_view(conn, 1)["name"] == "my first model"


def test_the_best_epoch_is_starred_where_a_narrow_picker_still_shows_it(open_page, conn):
    """The loss-jump warning points at the starred epoch in the picker; the star came
    last in the picker's label, which a 1,024 px page cuts after "epoch 74 · branch 0 · val l"."""
    session_id = trained_session(conn, 3)
    babysit.execute(conn, session_id, "set", {"learning_rate": 5.0})
    babysit.execute(conn, session_id, "run", {"epochs": 2})  # worse than epoch 3 now
    at = open_page("babysit", session=session_id)
    no_exception(at)
    picker = widget(at, "selectbox", "Epoch to go back to (or click a point on the curve)")
    starred = [o for o in picker.options if "★" in o]
    assert len(starred) == 1 and starred[0].startswith("★ epoch "), picker.options
