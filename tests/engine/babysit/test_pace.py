"""A watching pace: epochs at most so many a second, stored, honoured by the runner."""

from __future__ import annotations

import time

import pytest

from engine import babysit
from engine.babysit.commands import apply, validate
from engine.babysit.runner import serve
from tests.engine.babysit.test_runner import stop_process, wait_for


class FakeClock:
    """Time that passes only when the runner sleeps (training takes no time here)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_off_by_default_and_validated(conn, make_session):
    sid = make_session()
    assert babysit.session_view(conn, sid)["pace"] is None
    for bad in (-1, 101, "fast", True):
        with pytest.raises(ValueError, match=r"pace: epochs_per_second must be a number in "
                                             r"\(0, 100\]"):
            validate(conn, sid, "pace", {"epochs_per_second": bad})
    babysit.execute(conn, sid, "pace", {"epochs_per_second": 2})
    assert babysit.session_view(conn, sid)["pace"] == 2.0
    assert babysit.session_events(conn, sid)[-1]["payload"] == {"epochs_per_second": 2.0}
    babysit.execute(conn, sid, "pace", {"epochs_per_second": 0})
    assert babysit.session_view(conn, sid)["pace"] is None


def test_the_runner_spaces_epochs_by_the_pace(conn, make_session):
    sid = make_session()
    babysit.execute(conn, sid, "pace", {"epochs_per_second": 4})
    apply(conn, sid, "run", {"epochs": 3})
    clock, at = FakeClock(), []
    code = serve(conn, sid, idle_exit=1.0, poll=0.1, heartbeat_seconds=0.2,
                 on_outcome=lambda o: at.append(clock()), clock=clock, sleep=clock.sleep)
    assert code == 0 and babysit.session_view(conn, sid)["head_epoch"] == 3
    assert [b - a for a, b in zip(at, at[1:])] == pytest.approx([0.25, 0.25])


def test_without_a_pace_the_runner_never_waits_between_epochs(conn, make_session):
    sid = make_session()
    apply(conn, sid, "run", {"epochs": 3})
    clock, at = FakeClock(), []
    serve(conn, sid, idle_exit=1.0, poll=0.1, heartbeat_seconds=0.2,
          on_outcome=lambda o: at.append(clock()), clock=clock, sleep=clock.sleep)
    assert at == [0.0, 0.0, 0.0]


def test_the_detached_runner_honours_the_stored_pace(conn, make_session):
    """One epoch every 100 s: after the first lands, no second one comes, and pause is at once.
    (Without the pace the three tiny epochs land in well under a second; a loaded machine can
    only make this pass for the wrong reason, never fail it.)"""
    sid = make_session()
    babysit.send(conn, sid, "pace", epochs_per_second=0.01)
    babysit.send(conn, sid, "run", epochs=3)
    pid = wait_for(lambda: babysit.session_view(conn, sid)["runner"], 10, "a runner")["pid"]
    try:
        wait_for(lambda: babysit.session_view(conn, sid)["head_epoch"] >= 1, 60, "epoch 1")
        time.sleep(1.5)
        view = babysit.session_view(conn, sid)
        assert view["head_epoch"] == 1 and view["status"] == "running"
        babysit.send(conn, sid, "pause")
        wait_for(lambda: babysit.session_view(conn, sid)["status"] == "paused", 30,
                 "the pause, applied while waiting")
        assert babysit.session_view(conn, sid)["head_epoch"] == 1
    finally:
        stop_process(pid)


def test_a_foreground_run_keeps_the_pace_too(conn, make_session, monkeypatch):
    """``babysit step`` without a runner trains in the CLI's process: it waits as the runner."""
    from engine.babysit import commands

    waits = []
    monkeypatch.setattr(commands, "sleep", waits.append)
    sid = make_session()
    babysit.execute(conn, sid, "pace", {"epochs_per_second": 0.001})  # 1,000 s an epoch
    babysit.execute(conn, sid, "run", {"epochs": 3})
    assert len(waits) == 3 and all(990 < w <= 1000 for w in waits)
    babysit.execute(conn, sid, "pace", {"epochs_per_second": None})
    waits.clear()
    babysit.execute(conn, sid, "run", {"epochs": 2})
    assert waits == []
