"""Babysit a study's trial, then return the babysat model to its study as a trial."""

from __future__ import annotations

import numpy as np
import pytest

from engine import babysit
from engine.nn import state_from_bytes
from engine.run.work import run_segment
from engine.storage import sessions as session_store
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import actions
from engine.study.roundtrip import fork_trial, forkable_epochs, returned_trials, study_lineage
from tests.engine.study.helpers import run_fake
from tests.engine.study.test_actions import make_study


@pytest.fixture
def conn(db_path):
    c = connect(db_path)
    yield c
    c.close()


@pytest.fixture
def trained(db_path):
    study_id = make_study(db_path, n_trials=2, epochs=2)
    assert run_fake(db_path, study_id, work_fn=run_segment) == "complete"
    return study_id


def test_a_babysat_model_comes_back_as_a_trial_with_its_whole_path(db_path, conn, trained):
    source = store.list_trials(conn, trained)[1]
    with pytest.raises(ValueError, match=r"trial 1 cannot be forked at epoch 3; valid: "
                       r"epoch=1\.\.2"):
        fork_trial(conn, source["id"], epoch=3)
    assert forkable_epochs(conn, store.get_trial(conn, source["id"])) == [1, 2]
    session_id = fork_trial(conn, source["id"], epoch=2)
    babysit.execute(conn, session_id, "set", {"learning_rate": 0.003})
    babysit.execute(conn, session_id, "run", {"epochs": 2})
    action = actions.act(conn, trained, "return_session", {"session_id": session_id})
    trial = store.get_trial(conn, action["result"]["trial_id"])
    assert (trial["number"], trial["origin"], trial["state"]) == (2, "session", "complete")
    assert trial["params"]["learning_rate"] == 0.003  # the knobs it ended with
    assert trial["params"]["hidden_units"] == source["params"]["hidden_units"]
    assert trial["source"]["trial_id"] == source["id"] and trial["source"]["epoch"] == 2
    assert trial["source"]["session_id"] == session_id and trial["source"]["head_epoch"] == 4
    curve = store.trial_metrics(conn, trial["id"])
    assert [m["epoch"] for m in curve] == [1, 2, 3, 4]
    original = store.trial_metrics(conn, source["id"])
    assert [m["val_loss"] for m in curve[:2]] == [m["val_loss"] for m in original]
    head = session_store.get_node(conn, session_store.get_session(conn, session_id)
                                  ["head_node_id"])
    assert store.trial_checkpoint(conn, trial["id"]) == session_store.read_checkpoint(
        conn, head["checkpoint_id"])
    # lineage both ways
    assert returned_trials(conn, session_id)[0]["trial_id"] == trial["id"]
    events = [e for e in babysit.session_events(conn, session_id) if e["kind"] == "returned"]
    assert events[0]["payload"]["number"] == 2
    assert study_lineage(store.list_trials(conn, trained)) == [
        {"number": 2, "kind": "session", "from_trial": 1, "epoch": 2,
         "session_id": session_id, "head_epoch": 4}]
    assert store.get_study(conn, trained)["n_trials"] == 3  # on top of the budget
    with pytest.raises(ValueError, match="already returned as trial 2"):
        actions.act(conn, trained, "return_session", {"session_id": session_id})


def test_a_session_returns_only_to_the_study_it_came_from(db_path, conn, trained):
    other = make_study(db_path, n_trials=1, epochs=1)
    session_id = fork_trial(conn, store.list_trials(conn, trained)[0]["id"])
    with pytest.raises(ValueError, match=f"not adopted from a trial of study {other}"):
        actions.act(conn, other, "return_session", {"session_id": session_id})
    with pytest.raises(LookupError, match="no babysitting session with id=99"):
        actions.act(conn, trained, "return_session", {"session_id": 99})
    with pytest.raises(ValueError, match="no trained epoch"):
        fresh = babysit.new_session(conn, name="x", model={"hidden": [4]},
                                    dataset=store.get_study(conn, trained)["dataset"],
                                    config={}, seed=0)
        session_store.update_session(conn, fresh, source_trial_id=store.list_trials(
            conn, trained)[0]["id"])
        actions.act(conn, trained, "return_session", {"session_id": fresh})


def test_cli_show_prints_notes_names_and_where_each_trial_came_from(db_path, conn, trained,
                                                                   capsys):
    from engine.cli import main

    source = store.list_trials(conn, trained)[1]
    session_id = fork_trial(conn, source["id"], epoch=2)
    babysit.execute(conn, session_id, "run", {"epochs": 1})
    actions.act(conn, trained, "return_session", {"session_id": session_id})
    actions.act(conn, trained, "clone_trial", {"trial": 0, "edits": {}, "name": "twin"})
    actions.act(conn, trained, "add_trial", {"params": dict(source["params"])})
    actions.act(conn, trained, "note", {"text": "lr looks too high\nnext: lower it"})
    actions.act(conn, trained, "note", {"text": "the good one", "trial": 1})
    assert main(["show", str(trained), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "  notes: lr looks too high\n         next: lower it" in out
    rows = {int(line.split()[0]): line for line in out.splitlines()
            if line[:4].strip().isdigit()}
    assert "sampler" in rows[0] and "sampler" in rows[1]
    assert f"session {session_id} (trial 1 @ epoch 2)" in rows[2]
    assert "clone of trial 0" in rows[3] and "by hand" in rows[4]
    assert "      name: twin" in out and "      notes: the good one" in out


def test_cli_adopt_at_an_epoch_checks_it(db_path, conn, trained, capsys):
    from engine.cli import main

    source = store.list_trials(conn, trained)[0]
    assert main(["babysit", "adopt", str(source["id"]), "--epoch", "5", "--db",
                 str(db_path)]) == 2
    assert "cannot be forked at epoch 5; valid: epoch=1..2" in capsys.readouterr().err
    assert main(["babysit", "adopt", str(source["id"]), "--epoch", "2", "--db",
                 str(db_path)]) == 0
    assert "at epoch 2" in capsys.readouterr().out


def test_an_earlier_epoch_is_replayed_to_the_same_weights(db_path, conn, trained):
    source = store.list_trials(conn, trained)[0]
    session_id = fork_trial(conn, source["id"], epoch=1, start=False)
    view = babysit.session_view(conn, session_id)
    assert view["head_epoch"] == 0 and view["source_trial_id"] == source["id"]
    assert view["name"] == "trial 0 replayed to epoch 1"
    babysit.execute(conn, session_id, "run", {"epochs": 2})  # what the runner is sent: 1
    (branch,) = babysit.session_curves(conn, session_id)
    replayed = [p for p in branch["points"] if p["epoch"] >= 1]
    stored = store.trial_metrics(conn, source["id"])
    fields = ("train_loss", "train_acc", "val_loss", "val_acc", "learning_rate")
    assert [[p[f] for f in fields] for p in replayed] == [[m[f] for f in fields]
                                                          for m in stored]  # bitwise
    head = babysit.load_head_state(conn, session_id)
    kept = state_from_bytes(store.trial_checkpoint(conn, source["id"]))
    assert all(np.array_equal(head.params[k], kept.params[k]) for k in kept.params)


def test_a_trial_that_took_over_weights_forks_only_at_its_latest_epoch(conn, trained):
    from engine.storage.lineage import record_exploit

    first, second = store.list_trials(conn, trained)
    record_exploit(conn, second["id"], first["id"], 2, dict(second["params"]))
    second = store.get_trial(conn, second["id"])
    assert forkable_epochs(conn, second) == [2]
    with pytest.raises(ValueError, match="took over another trial's weights.*valid: epoch=2"):
        fork_trial(conn, second["id"], epoch=1, start=False)


def test_forking_asks_the_replay_probe_once(conn, trained, monkeypatch):
    """The probe trains the trial's epoch 1: fork_trial asked it twice (the valid epochs, then
    the reason), and so did the Trials view."""
    calls = []

    def stacked(conn, trial_id):
        calls.append(trial_id)
        return False  # as a trial trained stacked answers

    monkeypatch.setattr(babysit, "trial_replays", stacked)
    source = store.list_trials(conn, trained)[1]
    with pytest.raises(ValueError, match="trained stacked with other trials"):
        fork_trial(conn, source["id"], epoch=1, start=False)
    assert calls == [source["id"]]
