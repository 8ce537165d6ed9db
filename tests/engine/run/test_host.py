"""The run host (``engine.run.host.RunnerHost``): the one place both runners claim their slot,
keep its heartbeat, turn SIGTERM into a graceful stop, obey intents and release the slot."""

from __future__ import annotations

import os
import signal
import time

from engine import babysit
from engine.babysit import runner as babysit_runner
from engine.run.host import RunnerHost
from engine.storage import runners
from engine.storage.db import connect
from engine.study.facade import new_study
from tests.engine.study.helpers import run_fake

MOONS = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}


def poll(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_host_claims_beats_obeys_and_releases(db_path):
    conn = connect(db_path)
    with RunnerHost(db_path, "study", 7, heartbeat_seconds=0.05) as host:
        assert host.claimed and runners.runner_alive(conn, "study", 7)
        claimed_at = runners.runner_info(conn, "study", 7)["heartbeat_at"]
        poll(lambda: runners.runner_info(conn, "study", 7)["heartbeat_at"] > claimed_at,
             "the heartbeat thread to refresh the slot")
        runners.post_intent(conn, "study", 7, "stop")
        runners.post_intent(conn, "study", 7, "resume")
        seen = []
        assert host.obey_intents(conn, lambda c, intent: seen.append(intent["command"])) == 2
        assert seen == ["stop", "resume"] and runners.pending_intents(conn, "study", 7) == []
        assert host.obey_intents(conn, lambda c, intent: seen.append(intent)) == 0
        assert not host.lost
    assert not runners.runner_alive(conn, "study", 7)  # released on the way out


def test_a_host_whose_slot_is_taken_over_knows_it_lost_it(db_path):
    conn = connect(db_path)
    with RunnerHost(db_path, "session", 3, heartbeat_seconds=0.05) as host:
        runners.release_runner(conn, "session", 3)  # as another runner's takeover would
        poll(lambda: host.lost, "the host to notice it lost its slot")
    assert not runners.runner_alive(conn, "session", 3)


def test_sigterm_is_a_graceful_stop_and_the_old_handler_comes_back(db_path):
    outside = []

    def before(signum, frame):  # what the process had: it must not see the host's SIGTERM
        outside.append(signum)

    original = signal.signal(signal.SIGTERM, before)
    try:
        with RunnerHost(db_path, "study", 1) as host:
            assert not host.stop_requested.is_set()
            os.kill(os.getpid(), signal.SIGTERM)  # handled in this (the main) thread
            poll(lambda: host.stop_requested.is_set() or outside, "SIGTERM to be handled")
            assert host.stop_requested.is_set() and outside == []
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, original)


def test_release_if_idle_keeps_the_slot_while_intents_wait(db_path):
    conn = connect(db_path)
    with RunnerHost(db_path, "session", 2, signals=False) as host:
        runners.post_intent(conn, "session", 2, "pause")
        assert not host.release_if_idle(conn) and runners.runner_alive(conn, "session", 2)
        runners.take_intents(conn, "session", 2)
        assert not host.release_if_idle(conn, busy=lambda c: True)
        assert host.release_if_idle(conn) and not runners.runner_alive(conn, "session", 2)
    assert host.released


def test_both_runners_run_inside_the_one_host(db_path, monkeypatch):
    """The study runner and the babysit runner both hold their slot through ``RunnerHost``
    (issue 9: no runner keeps a heartbeat, signal handling or intent query of its own)."""
    entered = []
    real_enter = RunnerHost.__enter__

    def spy(self):
        host = real_enter(self)
        entered.append((self.kind, self.owner_id, host.claimed,
                        runners.runner_alive(connect(db_path), self.kind, self.owner_id)))
        return host

    monkeypatch.setattr(RunnerHost, "__enter__", spy)
    study_id = new_study(db_path, space={"params": {}, "fixed": {"hidden_units": 4}},
                         sampler={"kind": "random"}, dataset=MOONS, n_trials=1, workers=1,
                         scheduler={"kind": "full_budget", "n_epochs": 1})
    assert run_fake(db_path, study_id) == "complete"
    conn = connect(db_path)
    session_id = babysit.new_session(conn, name="tiny", model={"hidden": [4]}, dataset=MOONS,
                                     config={"learning_rate": 0.01, "batch_size": 32}, seed=0)
    runners.post_intent(conn, "session", session_id, "run", {"epochs": 1})
    assert babysit_runner.serve(conn, session_id, idle_exit=0) == 0
    assert entered == [("study", study_id, True, True), ("session", session_id, True, True)]
