"""The runner: queued intents in order, a detached process via ``send``, restart after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine import babysit
from engine.babysit import runner
from engine.cli import main as cli_main
from engine.storage import runners
from engine.storage import sessions as store
from engine.storage.db import connect
from tests.engine.babysit.conftest import assert_states_equal


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_process(pid: int) -> None:
    """End a runner this test started (by its pid) and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    wait_for(lambda: not runners.pid_alive(pid), 20, f"pid {pid} to exit")


def test_serve_applies_queued_intents_in_order_then_releases(conn, make_session):
    sid = make_session()
    runners.post_intent(conn, "session", sid, "run", {"epochs": 2})
    seen = []
    assert runner.serve(conn, sid, idle_exit=0, on_outcome=seen.append) == 0
    assert [o["epoch"] for o in seen] == [1, 2]
    # Queued together, commands all apply at the next epoch boundary, in order: a later run
    # replaces the remaining count.
    runners.post_intent(conn, "session", sid, "run", {"epochs": 5})
    runners.post_intent(conn, "session", sid, "set", {"learning_rate": 0.003})
    runners.post_intent(conn, "session", sid, "set", {"hidden": [3]})  # refused, recorded
    runners.post_intent(conn, "session", sid, "run", {"epochs": 1})
    assert runner.serve(conn, sid, idle_exit=0, on_outcome=seen.append) == 0
    view = babysit.session_view(conn, sid)
    assert view["head_epoch"] == 3 and view["status"] == "idle" and not view["runner_alive"]
    nodes = store.session_nodes(conn, sid)
    assert [n["config"]["learning_rate"] for n in nodes[1:]] == [0.01, 0.01, 0.003]
    events = babysit.session_events(conn, sid)
    kinds = [e["kind"] for e in events]
    assert kinds == ["created", "run", "done", "run", "set", "rejected", "run", "done"]
    assert "architecture" in events[5]["payload"]["message"]
    assert runners.pending_intents(conn, "session", sid) == []


def test_a_run_is_never_seen_taken_but_not_running(conn, db_path, make_session, monkeypatch):
    """The page stops watching a session it reads as not busy (no pending command, not
    running). The runner used to consume the 'run' intent, commit, then mark the session
    running: a page reading in between saw it idle, stopped polling, and showed the old epoch
    for good (a flake of the browser test). Now a reader sees one state or the other."""
    sid = make_session()
    reader = connect(db_path)
    seen = []
    apply = runner.apply

    def watched_apply(conn, session_id, command, payload=None, **kw):
        view = babysit.session_view(reader, session_id)  # another process, right now
        seen.append(view["status"] == "running" or view["pending_commands"] > 0)
        return apply(conn, session_id, command, payload, **kw)

    monkeypatch.setattr(runner, "apply", watched_apply)
    runners.post_intent(conn, "session", sid, "run", {"epochs": 1})
    assert runner.serve(conn, sid, idle_exit=0) == 0
    assert seen == [True]
    assert babysit.session_view(conn, sid)["head_epoch"] == 1


def test_a_second_runner_is_refused(conn, make_session):
    sid = make_session()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert runners.register_runner(conn, "session", sid, pid=holder.pid)
        assert runner.serve(conn, sid, idle_exit=0) == 1
    finally:
        holder.kill()
        holder.wait()


def test_release_waits_for_pending_intents(conn, make_session):
    sid = make_session()
    assert runners.register_runner(conn, "session", sid)
    runners.post_intent(conn, "session", sid, "pause")
    busy = runner._busy(sid)
    assert not runners.release_if_idle(conn, "session", sid, busy)
    assert runners.runner_alive(conn, "session", sid)
    runners.take_intents(conn, "session", sid)
    store.update_session(conn, sid, status="running")  # a running session keeps its runner
    assert not runners.release_if_idle(conn, "session", sid, busy)
    store.update_session(conn, sid, status="idle")
    assert runners.release_if_idle(conn, "session", sid, busy)
    assert not runners.runner_alive(conn, "session", sid)


def test_a_dead_runner_is_noticed(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "run", {"epochs": 1})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert runners.register_runner(conn, "session", sid, pid=dead.pid)
    runners.post_intent(conn, "session", sid, "run", {"epochs": 1})
    view = babysit.session_view(conn, sid)
    assert not view["runner_alive"] and view["pending_commands"] == 1 and view["needs_runner"]


@pytest.mark.slow
def test_send_spawns_a_runner_and_a_killed_one_is_restarted_without_loss(conn, make_session):
    # ~640 steps an epoch so that kill -9 lands mid-run.
    sid = make_session(dataset={"kind": "moons", "n_samples": 3200, "noise": 0.2, "seed": 0},
                       config={"learning_rate": 0.01, "batch_size": 4})
    total = 40
    babysit.send(conn, sid, "run", epochs=total)
    first = wait_for(lambda: babysit.session_view(conn, sid)["runner"], 10, "a runner slot")
    pid = first["pid"]
    try:
        wait_for(lambda: babysit.session_view(conn, sid)["head_epoch"] >= 3, 60, "3 epochs")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not runners.pid_alive(pid), 10, "the runner to die")
    finally:
        stop_process(pid)
    view = babysit.session_view(conn, sid)
    killed_at = view["head_epoch"]
    assert killed_at < total, "the run finished before the kill: make epochs slower"
    assert view["status"] == "running" and not view["runner_alive"] and view["needs_runner"]

    second = babysit.ensure_runner(conn, sid)
    assert second is not None and second != pid
    try:
        assert babysit.ensure_runner(conn, sid) is None  # one runner at a time
        wait_for(lambda: babysit.session_view(conn, sid)["status"] != "running", 90, "the end")
        view = babysit.session_view(conn, sid)
        assert view["status"] == "idle" and view["head_epoch"] == total
        nodes = store.session_nodes(conn, sid)
        assert [n["epoch"] for n in nodes] == list(range(total + 1))  # none lost, none twice
        assert all(n["branch"] == 0 for n in nodes)
        assert [n["parent_id"] for n in nodes[1:]] == [n["id"] for n in nodes[:-1]]
    finally:
        stop_process(second)
    assert not babysit.session_view(conn, sid)["runner_alive"]  # SIGTERM released the slot
    # The restarted runner went on from the head checkpoint, as an unbroken run would.
    unbroken = make_session(name="unbroken",
                            dataset={"kind": "moons", "n_samples": 3200, "noise": 0.2, "seed": 0},
                            config={"learning_rate": 0.01, "batch_size": 4})
    babysit.execute(conn, unbroken, "run", {"epochs": total})
    assert_states_equal(babysit.load_head_state(conn, sid),
                        babysit.load_head_state(conn, unbroken))


@pytest.mark.slow
def test_cli_step_follows_a_live_runner(conn, make_session, capsys):
    sid = make_session()
    pid = babysit.ensure_runner(conn, sid)
    try:
        wait_for(lambda: babysit.session_view(conn, sid)["runner_alive"], 10, "the runner")
        code = cli_main(["babysit", "step", str(sid), "--epochs", "3"])
        out = capsys.readouterr().out
        assert code == 0 and "queued for the runner" in out
        assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch")] == \
            ["1", "2", "3"]
        assert runners.runner_info(conn, "session", sid)["pid"] == pid  # not trained here
        code = cli_main(["babysit", "set", str(sid), "--lr", "0.002"])
        assert code == 0 and "set queued for the runner" in capsys.readouterr().out
        wait_for(lambda: babysit.session_view(conn, sid)["config"]["learning_rate"] == 0.002,
                 10, "the runner to apply set")
    finally:
        stop_process(pid)


def test_a_lock_held_elsewhere_delays_a_session_but_fails_nothing(db_path, monkeypatch,
                                                                  make_session):
    import sqlite3
    import threading

    monkeypatch.setenv("PANDA_CAVIAR_BUSY_TIMEOUT_MS", "200")
    from engine.storage.db import connect

    sid = make_session()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write: 10 busy timeouts
    result = {}

    def run() -> None:
        mine = connect(db_path)  # with the short busy timeout
        result.update(babysit.execute(mine, sid, "run", {"epochs": 3}))

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(2.0)
    holder.execute("COMMIT")
    worker.join(timeout=60)
    conn = connect(db_path)
    view = babysit.session_view(conn, sid)
    assert result["status"] == "idle" and view["status"] == "idle" and view["head_epoch"] == 3
    epochs = [p["epoch"] for p in babysit.session_curves(conn, sid)[0]["points"]]
    assert epochs == [0, 1, 2, 3]  # nothing lost, nothing twice


def test_foreground_step_and_the_detached_runner_are_bitwise_equal(db_path, conn, make_session):
    # Issue 12 fault 5: `babysit step` with no runner (a CLI process started without the BLAS
    # thread variables) and the runner `send` spawns (started with them) must train the same
    # numbers, epoch by epoch. Digits with 64-unit layers: matrices large enough that BLAS
    # would split them over threads if it were allowed to.
    kwargs = {"model": {"hidden": [64, 64]}, "dataset": {"kind": "digits"},
              "config": {"learning_rate": 0.01, "batch_size": 64}}
    foreground, detached = make_session(name="fg", **kwargs), make_session(name="bg", **kwargs)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-m", "engine", "babysit", "step", str(foreground), "--epochs", "3",
         "--db", str(db_path)], env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    babysit.send(conn, detached, "run", epochs=3)
    pid = wait_for(lambda: babysit.session_view(conn, detached)["runner"], 10, "a runner")["pid"]
    try:
        wait_for(lambda: babysit.session_view(conn, detached)["head_epoch"] == 3
                 and babysit.session_view(conn, detached)["status"] == "idle", 90, "3 epochs")
    finally:
        stop_process(pid)
    for a, b in zip(store.lineage(conn, babysit.session_view(conn, foreground)["head_node_id"]),
                    store.lineage(conn, babysit.session_view(conn, detached)["head_node_id"]),
                    strict=True):
        assert a["epoch"] == b["epoch"]
        assert_states_equal(babysit.load_state_at(conn, a["id"]),
                            babysit.load_state_at(conn, b["id"]))
