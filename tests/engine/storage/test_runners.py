"""Runner slots (claim, heartbeat, staleness, release) and intents (ordered, taken once)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.storage import runners
from engine.storage.db import connect, transaction


@pytest.fixture
def conn(db_path):
    return connect(db_path)


def test_claim_heartbeat_release(conn):
    assert runners.runner_info(conn, "study", 1) is None
    assert not runners.runner_alive(conn, "study", 1)
    assert runners.register_runner(conn, "study", 1)
    assert runners.runner_alive(conn, "study", 1)
    info = runners.runner_info(conn, "study", 1)
    assert info["pid"] == os.getpid() and info["alive"] and info["heartbeat_age"] < 5
    assert runners.heartbeat(conn, "study", 1)
    runners.release_runner(conn, "study", 1)
    assert not runners.runner_alive(conn, "study", 1)
    assert not runners.heartbeat(conn, "study", 1)


def test_second_live_runner_is_refused_and_same_pid_reclaims(conn):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert runners.register_runner(conn, "study", 7, pid=other.pid)
        assert not runners.register_runner(conn, "study", 7)  # held by a live process
        assert runners.register_runner(conn, "study", 7, pid=other.pid)  # same pid: ok
        assert not runners.heartbeat(conn, "study", 7)  # this process does not own it
        assert runners.register_runner(conn, "session", 7)  # kinds are separate slots
    finally:
        other.kill()
        other.wait()
    # The holder died: its slot is free at once (pid check), without waiting for staleness.
    assert not runners.runner_alive(conn, "study", 7)
    assert runners.register_runner(conn, "study", 7)


def test_a_live_local_runner_with_a_late_heartbeat_is_never_taken_over(conn):
    """A database locked for longer than STALE_AFTER delays heartbeats; the runner is alive."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            assert runners.register_runner(conn, "session", 3, pid=other.pid)
            with transaction(conn):
                conn.execute("UPDATE runners SET heartbeat_at = heartbeat_at - ?",
                             (runners.STALE_AFTER * 10,))
            assert runners.runner_alive(conn, "session", 3)
            assert not runners.register_runner(conn, "session", 3)
        finally:
            other.kill()
    assert not runners.runner_alive(conn, "session", 3)  # dead: free at once


def test_a_reused_pid_is_not_the_runner(conn):
    assert runners.register_runner(conn, "study", 4)
    assert runners.runner_info(conn, "study", 4)["pid_started"] == runners.pid_started(os.getpid())
    with transaction(conn):  # the slot's process started at another time: not this process
        conn.execute("UPDATE runners SET pid_started = '1'")
    assert not runners.runner_alive(conn, "study", 4)


def test_other_host_with_a_stale_heartbeat_is_dead(conn):
    with transaction(conn):
        conn.execute(
            "INSERT INTO runners VALUES ('study', 8, 999999, 'elsewhere', 0, ?, NULL, NULL)",
            (runners.now() - runners.STALE_AFTER - 1,),
        )
    assert not runners.runner_alive(conn, "study", 8)
    assert runners.register_runner(conn, "study", 8)


def test_other_host_is_judged_by_heartbeat_only(conn):
    with transaction(conn):
        conn.execute(
            "INSERT INTO runners VALUES ('study', 9, 999999, 'elsewhere', 0, ?, NULL, NULL)",
            (runners.now(),),
        )
    assert runners.runner_alive(conn, "study", 9)
    assert not runners.register_runner(conn, "study", 9)


def test_zombie_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert not runners.pid_alive(child.pid)
    child.wait()
    assert runners.pid_alive(os.getpid())


def test_intents_are_ordered_and_taken_once(conn):
    first = runners.post_intent(conn, "study", 1, "stop")
    second = runners.post_intent(conn, "study", 1, "run_epochs", {"n": 5})
    runners.post_intent(conn, "study", 2, "stop")
    assert second > first
    pending = runners.pending_intents(conn, "study", 1)
    assert [i["command"] for i in pending] == ["stop", "run_epochs"]
    assert pending[1]["payload"] == {"n": 5} and pending[1]["consumed_at"] is None
    taken = runners.take_intents(conn, "study", 1)
    assert [i["id"] for i in taken] == [first, second]
    assert all(i["consumed_at"] is not None for i in taken)
    assert runners.take_intents(conn, "study", 1) == []
    assert len(runners.pending_intents(conn, "study", 2)) == 1


def test_each_intent_is_consumed_in_the_transaction_that_applies_it(conn, db_path):
    """obey_intents: a reader never sees an intent consumed before its effects are written
    (with take-then-apply it did, and a kill in between lost the intent)."""
    runners.post_intent(conn, "study", 1, "stop")
    runners.post_intent(conn, "study", 1, "resume")
    reader = connect(db_path)
    seen = []

    def handle(conn, intent):
        runners.post_intent(conn, "study", 2, f"effect of {intent['command']}")
        # Another process, mid-transaction: the intent is still pending, the effect not there.
        pending = [i["command"] for i in runners.pending_intents(reader, "study", 1)]
        effects = [i["command"] for i in runners.pending_intents(reader, "study", 2)]
        seen.append((pending, effects))

    assert runners.obey_intents(conn, "study", 1, handle) == 2
    assert seen == [(["stop", "resume"], []), (["resume"], ["effect of stop"])]
    assert runners.pending_intents(conn, "study", 1) == []
    assert [i["command"] for i in runners.pending_intents(conn, "study", 2)] == [
        "effect of stop", "effect of resume"]


def test_an_intent_that_fails_stays_pending_with_none_of_its_effects(conn):
    runners.post_intent(conn, "study", 1, "stop")

    def crash(conn, intent):
        runners.post_intent(conn, "study", 2, "half-done effect")
        raise RuntimeError("the runner died half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        runners.obey_intents(conn, "study", 1, crash)
    assert [i["command"] for i in runners.pending_intents(conn, "study", 1)] == ["stop"]
    assert runners.pending_intents(conn, "study", 2) == []


def test_a_refused_intent_is_consumed_and_its_refusal_recorded_not_its_writes(conn):
    runners.post_intent(conn, "study", 1, "set")
    runners.post_intent(conn, "study", 1, "stop")
    applied = []

    def handle(conn, intent):
        runners.post_intent(conn, "study", 2, f"effect of {intent['command']}")
        if intent["command"] == "set":
            raise ValueError("learning_rate must be > 0, got -1")
        applied.append(intent["command"])

    def refuse(conn, intent, err):
        assert conn.in_transaction  # recorded in the transaction that consumed the intent
        runners.post_intent(conn, "study", 3, f"refused {intent['command']}: {err}")

    assert runners.obey_intents(conn, "study", 1, handle, refuse) == 2
    assert applied == ["stop"]
    assert runners.pending_intents(conn, "study", 1) == []
    assert [i["command"] for i in runners.pending_intents(conn, "study", 2)] == ["effect of stop"]
    assert [i["command"] for i in runners.pending_intents(conn, "study", 3)] == [
        "refused set: learning_rate must be > 0, got -1"]


def test_bad_kind_and_command_are_refused(conn):
    with pytest.raises(ValueError, match="kind"):
        runners.register_runner(conn, "job", 1)
    with pytest.raises(ValueError, match="command"):
        runners.post_intent(conn, "study", 1, "")
