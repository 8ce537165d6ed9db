"""Live redraws paced to the machine (app/live.py): on a loaded machine a redraw of the study or
babysit page took longer than its 1 s timer, so the page was always mid-redraw (charts blank,
clicks waiting). The interval now follows the measured redraw time, in buckets, with
hysteresis, and the page says which one it uses."""

from __future__ import annotations

import pytest
import streamlit as st

from app import live
from app.live import BUCKETS, Pace, next_interval
from engine.babysit.commands import apply
from engine.storage.runners import register_runner
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study
from tests.app.panda_helpers import trained_session


class Clock:
    """A clock that advances ``step`` seconds at each reading: every timed redraw costs
    ``step`` (a slow machine with a large step, a fast one with a small step)."""

    def __init__(self, step: float):
        self.step, self.t = step, 0.0

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock(0.001)
    monkeypatch.setattr(live, "clock", c)
    return c


@pytest.fixture
def fragments(monkeypatch):
    """Every ``st.fragment`` the app declares: [(function name, run_every)]."""
    made: list[tuple[str, float | None]] = []
    real = st.fragment

    def recording(func=None, *, run_every=None, **kw):
        def wrap(f):
            made.append((f.__name__, run_every))
            return real(f, run_every=run_every, **kw)
        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(st, "fragment", recording)
    return made


def notes(at) -> list[str]:
    return [c.value.replace(":material/update: ", "") for c in at.caption
            if "updates every" in c.value]


def test_the_interval_is_the_smallest_bucket_with_three_times_the_redraw():
    assert next_interval(1.0, 0.1, 0) == (1.0, 0)
    assert next_interval(1.0, 0.5, 0) == (2.0, 0)  # 1.5 s of headroom needed: 2 s
    assert next_interval(1.0, 1.2, 0) == (4.0, 0)  # straight up, not one bucket at a time
    assert next_interval(2.0, 5.0, 0) == (BUCKETS[-1], 0)  # slower than any: the largest


def test_it_falls_one_bucket_after_fast_redraws_in_a_row_and_does_not_flap():
    pace = Pace(interval=8.0)
    seen = [pace.record("a", 0.01) for _ in range(9)]
    assert seen == [8.0, 8.0, 4.0, 4.0, 4.0, 2.0, 2.0, 2.0, 1.0]
    # a cost just under a boundary (3 x 0.3 = 0.9 s fits 1 s, but not with room to spare)
    # keeps 2 s instead of switching between 1 s and 2 s
    pace = Pace(interval=2.0)
    assert {pace.record("a", cost) for cost in [0.3, 0.34, 0.3, 0.32] * 5} == {2.0}
    # one slow redraw among fast ones resets the streak
    pace = Pace(interval=2.0)
    assert [pace.record("a", c) for c in [0.01, 0.01, 0.4, 0.01, 0.01, 0.01]] == [
        2.0, 2.0, 2.0, 2.0, 2.0, 1.0]


def test_the_parts_of_a_page_add_up_and_each_part_counts_once_per_redraw():
    pace = Pace()
    pace.record("charts", 0.3)
    assert pace.record("log", 0.3) == 2.0  # 0.6 s a redraw in all
    assert pace.record("charts", 0.3) == 2.0  # the same part again replaces its cost
    pace.record("charts", 0.01)  # the log's last redraw still took 0.3 s: not fast yet
    assert pace.fast == 0
    for part in ["log", "charts", "log", "charts", "log"]:  # 3 x 2 parts fast: one down
        pace.record(part, 0.01)
    assert pace.interval == 2.0 and pace.fast == 5
    pace.record("charts", 0.01)
    assert pace.interval == 1.0


def test_the_study_page_slows_its_timer_on_slow_redraws_and_speeds_up_again(
        open_page, conn, clock, fragments):
    study_id = fake_study(conn, 6, 3, finished=2, status="running")
    assert register_runner(conn, "study", study_id)  # this process plays the live runner
    clock.step = 0.6  # each live part takes 0.6 s: 1.2 s with the sidebar
    at = open_page("studies", study=study_id)
    no_exception(at)
    assert notes(at) == ["updates every 4 s"]
    assert fragments[-2:] == [("_sidebar_body", 4.0), ("live", 4.0)]
    clock.step = 0.001  # the machine is quiet again
    seen = []
    for _ in range(12):
        fragments.clear()
        at.run()
        no_exception(at)
        seen.append(notes(at)[0])
        assert {every for _, every in fragments} <= {4.0, 2.0, 1.0}
    assert seen[0] == "updates every 4 s"  # hysteresis: not at the first fast redraw
    assert seen[-1] == "updates every 1 s"
    assert "updates every 2 s" in seen  # one bucket at a time
    assert seen == sorted(seen, key=lambda n: -float(n.split()[2]))


def test_the_babysit_page_paces_its_three_live_parts_together(open_page, conn, clock,
                                                              fragments):
    session_id = trained_session(conn, epochs=0)
    apply(conn, session_id, "run", {"epochs": 2})  # busy (its runner is not started here)
    clock.step = 0.6  # three parts of 0.6 s: 1.8 s a redraw, so 8 s
    at = open_page("babysit", session=session_id)
    no_exception(at)
    assert notes(at) == ["updates every 8 s"]
    # the first run declared them while it measured (1, 2, 4 s); one rerun declared them again
    assert [f for f in fragments if f[0].startswith("live_")][-3:] == [
        ("live_status", 8.0), ("live_charts", 8.0), ("live_log", 8.0)]
    clock.step = 0.001
    for _ in range(3):  # three page redraws of the three parts: one bucket down
        at.run()
    assert notes(at) == ["updates every 4 s"]


def test_nothing_live_no_note_and_no_timer(open_page, conn, clock, fragments):
    study_id = fake_study(conn, 6, 3, status="complete")
    clock.step = 0.6
    at = open_page("studies", study=study_id)
    no_exception(at)
    assert notes(at) == []
    assert ("live", None) in fragments
    assert at.session_state["_live.pace"].interval == 1.0  # slow redraws, but no timer


def _a_page_whose_part_slows_down_between_full_runs():
    """One live part declared in a full run, then run again as its own timer would (a timed
    rerun: no full run around it) while each redraw costs 0.6 s."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

    from app import live

    drawn = []
    captured = {}
    real = st.fragment

    def capturing(func=None, *, run_every=None, **kw):
        def wrap(f):
            captured["timed"], captured["every"] = f, run_every
            return real(f, run_every=run_every, **kw)
        return wrap(func) if func is not None else wrap

    st.fragment = capturing
    try:
        live.begin_run()
        live.live_part("part", lambda: drawn.append(1), live=True)
        stale = live.end_run()
    finally:
        st.fragment = real
    st.write(f"declared every {captured['every']:g} s, stale after the full run: {stale}")
    step = live.clock.step
    live.clock.step = 0.6  # the machine gets busy: the next timed redraw is slow
    try:
        captured["timed"]()
        st.write("timed rerun: no full rerun asked")
    except RerunException as rerun:
        app_wide = rerun.rerun_data.fragment_id_queue == []
        st.write(f"timed rerun: a full rerun asked (scope app: {app_wide})")
    finally:
        live.clock.step = step
    st.write(f"pace now {live.pace().interval:g} s after {len(drawn)} redraws")


def test_a_timed_rerun_that_changes_the_pace_asks_for_one_full_rerun(clock):
    """Streamlit reads run_every only when a full run declares a fragment: a part whose own
    timed rerun finds the redraw too slow for its timer asks for a full rerun (which declares
    every part with the new interval)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_a_page_whose_part_slows_down_between_full_runs).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.markdown] == [
        "declared every 1 s, stale after the full run: False",
        "timed rerun: a full rerun asked (scope app: True)",
        "pace now 2 s after 2 redraws",
    ]
