"""Hands on a study: each action applied directly (no runner) and by a live runner, once."""

from __future__ import annotations

import threading
import time

import pytest

from engine.storage import actions as store_actions
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study import actions
from engine.study.facade import new_study
from tests.engine import fake_work
from tests.engine.study.helpers import run_fake

LR = {"type": "float", "low": 1e-4, "high": 1.0, "scale": "log"}
L2 = {"type": "float", "low": 1e-6, "high": 1e-2, "scale": "log"}
FIXED = {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}
MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def make_study(db_path, *, n_trials=4, epochs=4, params=None, scheduler=None, **kw) -> int:
    return new_study(
        db_path, name="hands", space={"params": params or {"learning_rate": LR},
                                      "fixed": FIXED},
        sampler={"kind": "random"},
        scheduler=scheduler or {"kind": "full_budget", "n_epochs": epochs},
        dataset=MOONS, n_trials=n_trials, seed=5, workers=2, **kw,
    )


@pytest.fixture
def conn(db_path):
    c = connect(db_path)
    yield c
    c.close()


@pytest.fixture
def done_study(db_path):
    study_id = make_study(db_path)
    assert run_fake(db_path, study_id, max_segment_epochs=2) == "complete"
    return study_id


def test_add_trial_to_a_finished_study_is_trained_on_resume(db_path, conn, done_study):
    action = actions.act(conn, done_study, "add_trial",
                         {"params": {"learning_rate": 0.01}, "name": "my guess"})
    assert not action["queued"] and action["applied_at"] is not None
    trial = store.get_trial(conn, action["result"]["trial_id"])
    assert (trial["number"], trial["origin"], trial["name"]) == (4, "user", "my guess")
    assert trial["params"]["learning_rate"] == 0.01 and trial["params"]["hidden_units"] == 8
    study = store.get_study(conn, done_study)
    assert study["n_trials"] == 5 and study["stored_status"] == "stopped"  # on top of the budget
    assert run_fake(db_path, done_study, max_segment_epochs=2) == "complete"
    trained = store.get_trial(conn, trial["id"])
    assert trained["state"] == "complete" and trained["epochs_done"] == 4
    assert len(store.list_trials(conn, done_study)) == 5  # the sampler asked no extra trial


@pytest.mark.parametrize("params, words", [
    ({"learning_rate": 5.0}, "learning_rate"),
    ({"learning_rate": 0.01, "momentum": 0.5}, "momentum is not a parameter"),
    ({"learning_rate": 0.01, "hidden_units": 64}, "hidden_units is fixed at 8"),
    ({}, "missing: ['learning_rate']"),
])
def test_add_trial_refuses_bad_params_with_a_clear_message(conn, done_study, params, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        actions.act(conn, done_study, "add_trial", {"params": params})
    assert len(store.list_trials(conn, done_study)) == 4
    assert store_actions.list_actions(conn, done_study) == []  # nothing queued


def test_clone_keeps_the_source_params_but_the_edits(conn, done_study):
    source = store.list_trials(conn, done_study)[2]
    action = actions.act(conn, done_study, "clone_trial",
                         {"trial": 2, "edits": {"learning_rate": 0.002}})
    clone = store.get_trial(conn, action["result"]["trial_id"])
    assert clone["params"] == {**source["params"], "learning_rate": 0.002}
    assert clone["source"] == {"kind": "clone", "trial_id": source["id"], "number": 2}
    assert clone["name"] == "clone of trial 2"
    with pytest.raises(ValueError, match="no trial 9"):
        actions.act(conn, done_study, "clone_trial", {"trial": 9})


def test_more_trials_extends_the_budget(db_path, conn, done_study):
    actions.act(conn, done_study, "more_trials", {"trials": 3})
    assert store.get_study(conn, done_study)["n_trials"] == 7
    assert run_fake(db_path, done_study) == "complete"
    assert [t["state"] for t in store.list_trials(conn, done_study)] == ["complete"] * 7
    with pytest.raises(ValueError, match="no epoch budget"):
        actions.act(conn, done_study, "more_trials", {"epochs": 10})
    with pytest.raises(ValueError, match="trials=N .* or epochs=N"):
        actions.act(conn, done_study, "more_trials", {})


def test_extend_top_k_continues_the_best_from_their_checkpoints(db_path, conn, done_study):
    with pytest.raises(ValueError, match="k=9 is more than the 4 finished"):
        actions.act(conn, done_study, "extend_top", {"k": 9, "epochs": 8})
    with pytest.raises(ValueError, match="epochs=3 is not more than"):
        actions.act(conn, done_study, "extend_top", {"k": 1, "epochs": 3})
    before = store.list_trials(conn, done_study)
    best = sorted(before, key=lambda t: -t["best_val_acc"])[:2]
    action = actions.act(conn, done_study, "extend_top", {"k": 2, "epochs": 8})
    assert action["result"]["numbers"] == [t["number"] for t in best]
    assert run_fake(db_path, done_study, max_segment_epochs=3) == "complete"
    for t in store.list_trials(conn, done_study):
        epochs = [m["epoch"] for m in store.trial_metrics(conn, t["id"])]
        want = 8 if t["number"] in action["result"]["numbers"] else 4
        assert epochs == list(range(1, want + 1)) and t["state"] == "complete"


def test_rank_by_last_or_epoch_k_changes_the_top_k(conn, done_study):
    actions.act(conn, done_study, "rank_by", {"at": 2})
    assert store.get_study(conn, done_study)["rank"] == {"at": 2}
    with pytest.raises(ValueError, match="rank at must be"):
        actions.act(conn, done_study, "rank_by", {"at": "median"})


def test_narrowing_a_range_marks_earlier_trials_and_new_asks_stay_inside(db_path, conn,
                                                                      done_study):
    from engine.study.outside import outside_names

    narrow = {"type": "float", "low": 1e-3, "high": 1e-2, "scale": "log"}
    old = store.list_trials(conn, done_study)
    action = actions.act(conn, done_study, "set_space", {"params": {"learning_rate": narrow}})
    space = store.get_study(conn, done_study)["space"]
    outside = [t["number"] for t in old if not 1e-3 <= t["params"]["learning_rate"] <= 1e-2]
    assert action["result"]["outside"] == outside and outside
    for t in store.list_trials(conn, done_study):
        assert 0.0 <= t["unit"][0] <= 1.0
        assert bool(outside_names(space, t["params"])) == (t["number"] in outside)
    actions.act(conn, done_study, "more_trials", {"trials": 4})
    assert run_fake(db_path, done_study) == "complete"
    new = store.list_trials(conn, done_study)[4:]
    assert len(new) == 4 and all(1e-3 <= t["params"]["learning_rate"] <= 1e-2 for t in new)


def test_fixing_a_knob_removes_it_from_the_search(db_path, conn):
    study_id = make_study(db_path, params={"learning_rate": LR, "l2": L2}, n_trials=2)
    assert run_fake(db_path, study_id) == "complete"
    actions.act(conn, study_id, "set_space", {"fix": {"l2": 1e-4}})
    study = store.get_study(conn, study_id)
    assert list(study["space"]["params"]) == ["learning_rate"]
    assert study["space"]["fixed"]["l2"] == 1e-4
    assert all(len(t["unit"]) == 1 for t in store.list_trials(conn, study_id))
    actions.act(conn, study_id, "more_trials", {"trials": 2})
    assert run_fake(db_path, study_id) == "complete"
    assert [t["params"]["l2"] for t in store.list_trials(conn, study_id)[2:]] == [1e-4, 1e-4]
    with pytest.raises(ValueError, match="momentum is not searched"):
        actions.act(conn, study_id, "set_space", {"fix": {"momentum": 0.9}})


def test_notes_names_and_archive(conn, done_study):
    actions.act(conn, done_study, "note", {"text": "lr matters most"})
    actions.act(conn, done_study, "note", {"trial": 1, "text": "odd curve"})
    actions.act(conn, done_study, "rename", {"name": "moons, first pass"})
    actions.act(conn, done_study, "rename", {"trial": 1, "name": "the odd one"})
    actions.act(conn, done_study, "archive", {"archived": True})
    study = store.get_study(conn, done_study)
    assert (study["notes"], study["name"], study["archived"]) == (
        "lr matters most", "moons, first pass", True)
    trial = store.list_trials(conn, done_study)[1]
    assert (trial["notes"], trial["name"]) == ("odd curve", "the odd one")
    with pytest.raises(ValueError, match="name cannot be empty"):
        actions.act(conn, done_study, "rename", {"name": "  "})
    with pytest.raises(ValueError, match="unknown study action 'explode'"):
        actions.act(conn, done_study, "explode", {})


def test_stop_trial_refuses_a_finished_one(conn, done_study):
    with pytest.raises(ValueError, match="trial 0 is already complete"):
        actions.act(conn, done_study, "stop_trial", {"trial": 0})


def test_remove_study_needs_its_name(conn, done_study):
    with pytest.raises(ValueError, match="confirm with its name 'hands'"):
        actions.remove_study(conn, done_study, confirm="yes")
    actions.act(conn, done_study, "note", {"text": "x"})
    actions.remove_study(conn, done_study, confirm="hands")
    assert store.list_studies(conn) == []
    assert conn.execute("SELECT COUNT(*) FROM study_actions").fetchone()[0] == 0


def test_a_queued_action_whose_runner_died_is_applied_once_by_the_next(db_path, conn,
                                                                      done_study):
    # As if a runner had been alive when it was asked, and was killed before applying it.
    action_id = store_actions.queue_action(conn, done_study, "add_trial",
                                           {"params": {"learning_rate": 0.01}})
    runners.post_intent(conn, "study", done_study, "action", {"id": action_id})
    store_actions.update_study(conn, done_study, status="stopped")
    assert run_fake(db_path, done_study) == "complete"
    assert store_actions.get_action(conn, action_id)["applied_at"] is not None
    assert actions.apply_pending(conn, done_study) == []  # nothing twice
    trials = store.list_trials(conn, done_study)
    assert len(trials) == 5 and trials[4]["origin"] == "user" and trials[4]["state"] == "complete"


def test_an_action_refused_at_apply_time_keeps_its_error(conn, done_study):
    action_id = store_actions.queue_action(conn, done_study, "stop_trial", {"trial": 0})
    [applied] = actions.apply_pending(conn, done_study)
    assert "already complete" in applied["error"]
    assert store_actions.get_action(conn, action_id)["error"] == applied["error"]


def slow_segment(task: dict) -> dict:
    time.sleep(0.03 * task["n_epochs"])
    return fake_work.fake_segment(task)


def _start_runner(db_path, study_id):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("status", run_fake(
        db_path, study_id, work_fn=slow_segment, max_segment_epochs=1)))
    thread.start()
    conn = connect(db_path)
    deadline = time.monotonic() + 10
    while not store.list_trials(conn, study_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.close()
    return thread, box


def test_a_live_runner_applies_actions_while_it_runs(db_path, conn):
    study_id = make_study(db_path, n_trials=3, epochs=12)
    thread, box = _start_runner(db_path, study_id)
    try:
        stop = actions.act(conn, study_id, "stop_trial", {"trial": 0})
        added = actions.act(conn, study_id, "add_trial", {"params": {"learning_rate": 0.05}})
        assert stop["queued"] and added["queued"]
        for a in (stop, added):
            assert actions.wait_applied(conn, a["id"])["applied_at"] is not None
    finally:
        thread.join(60)
    assert box["status"] == "complete"
    trials = store.list_trials(conn, study_id)
    assert trials[0]["state"] == "cancelled" and 0 < trials[0]["epochs_done"] < 12
    epochs = [m["epoch"] for m in store.trial_metrics(conn, trials[0]["id"])]
    assert epochs == list(range(1, trials[0]["epochs_done"] + 1))  # its epochs are kept
    user = [t for t in trials if t["origin"] == "user"]
    assert len(user) == 1 and user[0]["state"] == "complete" and user[0]["epochs_done"] == 12
    assert len(trials) == 4 and store.get_study(conn, study_id)["n_trials"] == 4


def run_stacked(db_path, study_id, during=None) -> tuple[str, list[int]]:
    """The study's real runner on the default, stacked path: the real work unit and the real
    stacked one (``stack=True``); ``during(members)`` runs inside the first stacked unit,
    while the runner is alive and the unit in flight. Returns (status, the stacks' sizes)."""
    from engine.run.stacked_work import run_stacked_segment
    from engine.run.work import run_segment

    sizes = []

    def stack_fn(task):
        sizes.append(len(task["members"]))
        if during is not None and len(sizes) == 1:
            during()
        return run_stacked_segment(task)

    status = run_fake(db_path, study_id, work_fn=run_segment, stack=True, stack_fn=stack_fn,
                      max_segment_epochs=2)
    return status, sizes


def epochs_of(conn, trial) -> list[int]:
    return [m["epoch"] for m in store.trial_metrics(conn, trial["id"])]


LIVE_ACTIONS = {  # applied by the runner while the first stack trains
    "stop": ("stop_trial", {"trial": 0}),
    "add": ("add_trial", {"params": {"learning_rate": 0.05}, "name": "mine"}),
    "edit": ("clone_trial", {"trial": 1, "edits": {"learning_rate": 0.002}}),
}


@pytest.mark.parametrize("what", [*LIVE_ACTIONS, "extend"])
def test_each_action_holds_over_the_real_stacked_path(db_path, conn, what):
    """Stacking is the default, and a stacked unit carries several trials: stop, add, edit (a
    clone with edited params) and extend the best, each over the real work units."""
    study_id = make_study(db_path, n_trials=6, epochs=4)  # 2 workers: two stacks of 3
    applied = []

    def during():  # the runner is alive: the action is queued, and applied by it
        kind, payload = LIVE_ACTIONS[what]
        action = actions.act(db_path, study_id, kind, payload)
        assert action["queued"]
        applied.append(actions.wait_applied(db_path, action["id"], timeout=60))

    status, sizes = run_stacked(db_path, study_id, during if what in LIVE_ACTIONS else None)
    assert status == "complete" and sizes[0] == 3  # the action lands while 3 train as one
    trials = store.list_trials(conn, study_id)
    if what in LIVE_ACTIONS:
        assert applied[0]["applied_at"] is not None and applied[0]["error"] == ""
    if what == "stop":
        assert [t["state"] for t in trials] == ["cancelled"] + ["complete"] * 5
        assert epochs_of(conn, trials[0]) == list(range(1, trials[0]["epochs_done"] + 1))
        assert 0 < trials[0]["epochs_done"] < 4  # stopped mid-study, its epochs kept
    elif what in ("add", "edit"):
        mine = [t for t in trials if t["origin"] == "user"]
        assert len(trials) == 7 and len(mine) == 1  # on top of the budget of 6
        want = ({**trials[0]["params"], "learning_rate": 0.05} if what == "add"
                else {**trials[1]["params"], "learning_rate": 0.002})
        assert mine[0]["params"] == want
        assert all(t["state"] == "complete" and epochs_of(conn, t) == [1, 2, 3, 4]
                   for t in trials)
    else:  # extend the best four of the finished study, from their checkpoints
        before = {t["number"]: store.trial_metrics(conn, t["id"]) for t in trials}
        action = actions.act(conn, study_id, "extend_top", {"k": 4, "epochs": 6})
        status, sizes = run_stacked(db_path, study_id)
        assert status == "complete" and max(sizes) >= 2  # extended trials go on stacked
        for t in store.list_trials(conn, study_id):
            metrics = store.trial_metrics(conn, t["id"])
            want = 6 if t["number"] in action["result"]["numbers"] else 4
            assert [m["epoch"] for m in metrics] == list(range(1, want + 1))
            assert metrics[:4] == before[t["number"]] and t["state"] == "complete"
