"""Every command of a session, applied synchronously with ``execute`` (no subprocess)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import babysit
from engine.storage import sessions as store
from tests.engine.babysit.conftest import assert_states_equal


def events_of(conn, sid, kind=None):
    return [e for e in babysit.session_events(conn, sid) if kind is None or e["kind"] == kind]


def test_new_session_has_an_epoch0_checkpoint_and_a_created_event(conn, make_session):
    sid = make_session()
    view = babysit.session_view(conn, sid)
    assert view["status"] == "idle" and view["head_epoch"] == 0 and view["branch"] == 0
    assert view["model"]["n_inputs"] == 2 and view["model"]["hidden"] == [16, 16]
    assert view["config"]["learning_rate"] == 0.01 and view["rollback_targets"] == []
    assert view["runner_alive"] is False and view["needs_runner"] is False
    state = babysit.load_head_state(conn, sid)
    assert state.epoch == 0
    (created,) = events_of(conn, sid)
    assert created["kind"] == "created" and created["actor"] == "user"


def test_new_session_rejects_bad_inputs_with_clear_messages(conn, make_session):
    with pytest.raises(ValueError, match="n_inputs=3 does not match the dataset"):
        make_session(model={"hidden": [4], "n_inputs": 3})
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        make_session(seed=-1)
    with pytest.raises(ValueError, match="learning_rate"):
        make_session(config={"learning_rate": 0})


def test_run_trains_one_node_per_epoch_and_records_events(conn, make_session):
    sid = make_session()
    result = babysit.execute(conn, sid, "run", {"epochs": 3})
    assert result["status"] == "idle" and len(result["outcomes"]) == 3
    assert [o["epoch"] for o in result["outcomes"]] == [1, 2, 3]
    nodes = store.session_nodes(conn, sid)
    assert [n["epoch"] for n in nodes] == [0, 1, 2, 3]
    assert all(n["checkpoint_id"] is not None for n in nodes)
    for n in nodes[1:]:
        assert all(math.isfinite(n[f]) for f in store.METRIC_FIELDS)
    assert [n["parent_id"] for n in nodes[1:]] == [n["id"] for n in nodes[:-1]]
    kinds = [e["kind"] for e in events_of(conn, sid)]
    assert kinds == ["created", "run", "done"]
    assert events_of(conn, sid, "done")[0]["payload"] == {"reason": "finished"}
    assert babysit.load_head_state(conn, sid).epoch == 3


def test_pause_takes_effect_after_the_current_epoch(conn, make_session):
    sid = make_session()

    def pause_after_two(c, s):
        if babysit.session_view(c, s)["head_epoch"] == 2:
            babysit.execute(c, s, "pause")

    result = babysit.execute(conn, sid, "run", {"epochs": 10}, between_epochs=pause_after_two)
    view = babysit.session_view(conn, sid)
    assert result["status"] == "paused" and view["head_epoch"] == 2
    assert view["remaining_epochs"] == 0
    assert [e["kind"] for e in events_of(conn, sid)][-2:] == ["pause", "done"]
    # A new run goes on from the head.
    babysit.execute(conn, sid, "run", {"epochs": 1})
    assert babysit.session_view(conn, sid)["head_epoch"] == 3


def test_set_changes_config_from_the_next_epoch(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 1})
    babysit.execute(conn, sid, "set", {"learning_rate": 0.002, "batch_size": 16, "l2": 1e-4})
    babysit.execute(conn, sid, "run", {"epochs": 1})
    nodes = store.session_nodes(conn, sid)
    assert nodes[1]["config"]["learning_rate"] == 0.01
    assert nodes[2]["config"]["learning_rate"] == 0.002 and nodes[2]["config"]["batch_size"] == 16
    assert nodes[2]["learning_rate"] == pytest.approx(0.002)
    (event,) = events_of(conn, sid, "set")
    assert event["actor"] == "user" and event["epoch"] == 1
    assert event["payload"]["changes"]["learning_rate"] == [0.01, 0.002]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"hidden": [32]}, "cannot change 'hidden'.*architecture .* is fixed"),
        ({"activation": "tanh"}, "cannot change 'activation'"),
        ({"hidden_units": 8}, "cannot change 'hidden_units'"),
        ({"learning_rte": 0.1}, "unknown hyperparameter 'learning_rte' .*'learning_rate'"),
        ({"learning_rate": -1.0}, "set: learning_rate must be > 0, got -1.0"),
        ({"dropout": 1.0}, r"set: dropout must be in \[0, 1\)"),
        ({"batch_size": 0}, "set: batch_size must be an integer >= 1"),
        ({"optimizer": "lbfgs"}, "set: optimizer must be one of sgd, momentum, rmsprop, adam"),
        ({}, "set: give at least one hyperparameter"),
    ],
)
def test_set_rejects_architecture_and_invalid_values(conn, make_session, payload, match):
    sid = make_session()
    with pytest.raises(ValueError, match=match):
        babysit.execute(conn, sid, "set", payload)
    with pytest.raises(ValueError, match=match):  # the UI's path fails at once, too
        babysit.send(conn, sid, "set", **payload)
    assert babysit.session_view(conn, sid)["config"]["learning_rate"] == 0.01
    assert events_of(conn, sid, "set") == []


def test_other_commands_validate_their_payloads(conn, make_session):
    sid = make_session()
    with pytest.raises(ValueError, match="unknown command 'jump'"):
        babysit.execute(conn, sid, "jump")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1 or None, got 0"):
        babysit.execute(conn, sid, "run", {"epochs": 0})
    with pytest.raises(ValueError, match="run: unknown field"):
        babysit.execute(conn, sid, "run", {"n": 3})
    with pytest.raises(ValueError, match="already the head"):
        babysit.execute(conn, sid, "rollback", {"epoch": 0})
    with pytest.raises(ValueError, match="epoch=5 is not on the current branch"):
        babysit.execute(conn, sid, "rollback", {"epoch": 5})
    with pytest.raises(ValueError, match="exactly one of node_id or epoch"):
        babysit.execute(conn, sid, "rollback", {})
    other = make_session(name="other")
    foreign = babysit.session_view(conn, other)["head_node_id"]
    with pytest.raises(ValueError, match=f"node_id={foreign} is not a node of session {sid}"):
        babysit.execute(conn, sid, "rollback", {"node_id": foreign})
    with pytest.raises(babysit.SessionNotFound, match="id=999"):
        babysit.session_view(conn, 999)


def test_rollback_law_is_bitwise_and_keeps_the_old_branch(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 7})
    first = babysit.load_head_state(conn, sid)
    babysit.execute(conn, sid, "rollback", {"epoch": 3})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 3 and view["branch"] == 1
    assert babysit.load_head_state(conn, sid).epoch == 3
    babysit.execute(conn, sid, "run", {"epochs": 4})
    second = babysit.load_head_state(conn, sid)
    assert_states_equal(first, second)  # same weights, optimizer state and RNG, bit for bit

    curves = {c["branch"]: c for c in babysit.session_curves(conn, sid)}
    assert curves[0]["abandoned"] and not curves[0]["current"]
    assert [p["epoch"] for p in curves[0]["points"]] == list(range(8))
    assert not curves[1]["abandoned"] and curves[1]["current"]
    assert curves[1]["parent_branch"] == 0 and curves[1]["fork_epoch"] == 3
    assert [p["epoch"] for p in curves[1]["points"]] == [4, 5, 6, 7]
    same = [p["val_loss"] for p in curves[0]["points"][4:]]
    assert [p["val_loss"] for p in curves[1]["points"]] == same

    (event,) = events_of(conn, sid, "rollback")
    assert event["actor"] == "user" and event["branch"] == 1 and event["epoch"] == 3
    assert event["payload"]["from_epoch"] == 7 and event["payload"]["new_branch"] == 1
    targets = babysit.session_view(conn, sid)["rollback_targets"]
    abandoned = {(t["branch"], t["epoch"]) for t in targets if t["abandoned"]}
    assert abandoned == {(0, e) for e in range(8)}


def test_rollback_to_an_abandoned_node_and_restore_config(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 4})
    babysit.execute(conn, sid, "rollback", {"epoch": 1})
    babysit.execute(conn, sid, "set", {"learning_rate": 0.05})
    babysit.execute(conn, sid, "run", {"epochs": 1})
    node = next(t for t in babysit.session_view(conn, sid)["rollback_targets"]
                if t["branch"] == 0 and t["epoch"] == 3)
    babysit.execute(conn, sid, "rollback", {"node_id": node["node_id"], "restore_config": True})
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 3 and view["branch"] == 2
    assert view["config"]["learning_rate"] == 0.01  # restored from that node
    branches = {b["branch"]: b for b in view["branches"]}
    assert branches[0]["abandoned"] and branches[1]["abandoned"] and not branches[2]["abandoned"]
    assert branches[2]["parent_branch"] == 0 and branches[2]["fork_epoch"] == 3


def test_user_rollback_stops_a_running_run(conn, make_session):
    sid = make_session()

    def rollback_at_three(c, s):
        if babysit.session_view(c, s)["head_epoch"] == 3:
            babysit.execute(c, s, "rollback", {"epoch": 1})

    result = babysit.execute(conn, sid, "run", {"epochs": 6}, between_epochs=rollback_at_three)
    view = babysit.session_view(conn, sid)
    assert result["status"] == "paused" and view["head_epoch"] == 1 and view["branch"] == 1


def test_auto_command_is_recorded(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "auto", {"enabled": True, "patience": 2})
    view = babysit.session_view(conn, sid)
    assert view["auto"] == {**store.DEFAULT_AUTO, "enabled": True, "patience": 2}
    (event,) = events_of(conn, sid, "auto")
    assert event["payload"]["enabled"] is True
    with pytest.raises(ValueError, match="factor must be a number in"):
        babysit.execute(conn, sid, "auto", {"factor": 2})


def test_divergence_is_recorded_and_never_stored(conn, make_session):
    sid = make_session(model={"hidden": [16], "batch_norm": False},
                       config={"learning_rate": 1e4, "optimizer": "sgd", "batch_size": 32})
    result = babysit.execute(conn, sid, "run", {"epochs": 5})
    view = babysit.session_view(conn, sid)
    assert result["status"] == "diverged" and view["status"] == "diverged"
    assert view["message"] and view["remaining_epochs"] == 0
    diverged = events_of(conn, sid, "diverged")
    assert len(diverged) == 1 and diverged[0]["payload"]["message"] == view["message"]
    assert diverged[0]["payload"]["learning_rate"] == 1e4
    for n in store.session_nodes(conn, sid):
        for f in store.METRIC_FIELDS:
            assert n[f] is None or math.isfinite(n[f])
    state = babysit.load_head_state(conn, sid)
    assert state.epoch == view["head_epoch"]
    assert all(np.isfinite(p).all() for p in state.params.values())
    # The person lowers the learning rate and goes on from the last good checkpoint.
    babysit.execute(conn, sid, "set", {"learning_rate": 0.01})
    assert babysit.execute(conn, sid, "run", {"epochs": 2})["status"] == "idle"
    assert babysit.session_view(conn, sid)["head_epoch"] == state.epoch + 2


def test_checkpoint_budget_keeps_the_promised_epochs(conn, make_session):
    retention = {"max_params_keep_all": 10, "keep_last": 3, "keep_every": 4}
    sid = make_session(retention=retention)
    babysit.execute(conn, sid, "run", {"epochs": 12})
    view = babysit.session_view(conn, sid)
    assert view["n_params"] > 10 and view["retention"] == retention
    kept = {t["epoch"] for t in view["rollback_targets"]} | {view["head_epoch"]}
    best = view["best"]["epoch"]
    assert kept == {0, 8, 10, 11, 12} | {best}  # the last 3, every 4th (ages 3-5), root, best
    stored = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    assert stored == len(kept)  # pruned blobs are deleted, not just unlinked
    pruned = next(e for e in range(1, 12) if e not in kept)
    with pytest.raises(ValueError, match=f"checkpoint of epoch {pruned} .* is not kept"):
        babysit.execute(conn, sid, "rollback", {"epoch": pruned})
    node = next(n for n in store.session_nodes(conn, sid) if n["epoch"] == pruned)
    with pytest.raises(babysit.CheckpointPruned, match="rollback_targets"):
        babysit.load_state_at(conn, node["id"])
    assert node["val_loss"] is not None  # metrics stay for the curves


def test_small_models_keep_every_checkpoint(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 6})
    view = babysit.session_view(conn, sid)
    assert sorted(t["epoch"] for t in view["rollback_targets"]) == [0, 1, 2, 3, 4, 5]


def test_views_for_the_dashboard(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 2})
    (row,) = babysit.list_sessions(conn)
    assert row["id"] == sid and row["head_epoch"] == 2 and row["status"] == "idle"
    data = babysit.session_dataset(conn, sid)
    assert data.X_train.shape[1] == 2
    events = babysit.session_events(conn, sid)
    assert babysit.session_events(conn, sid, since_id=events[0]["id"]) == events[1:]


def test_a_model_too_large_to_checkpoint_is_refused_before_anything_runs(conn, make_session):
    from engine.babysit.checks import validate

    with pytest.raises(ValueError, match=r"model too large: .* parameters asked for .* "
                                         r"the limit is 5,000,000"):
        make_session(model={"hidden": [4096] * 7})
    assert babysit.list_sessions(conn) == []
    sid = make_session(model={"hidden": [1024, 1024]})
    with pytest.raises(ValueError, match="set: batch too large"):
        validate(conn, sid, "set", {"batch_size": 65_536})
