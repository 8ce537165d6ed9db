"""Live status: the sidebar and the Overview follow a study as its runner writes, re-read by a
timer only while a runner is alive (issue 12 item 13: the sidebar said "2/60 trials" while the
study page said 50 of 60; the Overview said "running 0/30" a minute after the study ended)."""

from __future__ import annotations

import time

import pytest
import streamlit as st

from app.common import LIVE_EVERY, live_every
from engine import study as studies
from tests.app.conftest import no_exception

SPACE = {"params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1,
                                      "scale": "log"}},
         "fixed": {"hidden_layers": 1, "hidden_units": 8, "batch_size": 32}}
TINY = {"kind": "moons", "n_samples": 120, "noise": 0.2, "seed": 0}


def test_a_timer_only_while_a_runner_is_alive():
    running = {"status": "running", "runner_alive": True}
    stalled = {"status": "queued", "runner_alive": False}  # never started: nothing to wait for
    assert live_every([running], []) == LIVE_EVERY
    assert live_every([], [{"status": "running", "runner_alive": True}]) == LIVE_EVERY
    assert live_every([stalled], []) is None
    assert live_every([], [{"status": "running", "runner_alive": False}]) is None
    assert live_every([], []) is None


@pytest.fixture
def fragments(monkeypatch):
    """Every ``st.fragment`` the app creates: [(function name, run_every)]."""
    made: list[tuple[str, float | None]] = []
    real = st.fragment

    def recording(func=None, *, run_every=None, **kw):
        def wrap(f):
            made.append((f.__name__, run_every))
            return real(f, run_every=run_every, **kw)
        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(st, "fragment", recording)
    return made


def sidebar_labels(at) -> list[str]:
    return [e.proto.label for e in at.sidebar.get("page_link")]


def overview_progress(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_sidebar_and_overview_follow_a_real_runner_then_stop_polling(open_page, conn, fragments):
    at = open_page()
    no_exception(at)
    assert ("_sidebar_body", None) in fragments and ("lists", None) in fragments  # idle
    study_id = studies.new_study(
        conn, name="live one", space=SPACE, sampler={"kind": "random"},
        scheduler={"kind": "full_budget", "n_epochs": 3}, dataset=TINY, n_trials=6, workers=1)
    studies.start_study(conn, study_id)
    fragments.clear()
    at.run()
    no_exception(at)
    if studies.get_study(conn, study_id)["status"] == "running":  # (it may be done already)
        assert ("_sidebar_body", LIVE_EVERY) in fragments and ("lists", LIVE_EVERY) in fragments
    seen, deadline = set(), time.monotonic() + 120
    while time.monotonic() < deadline:
        at.run()
        no_exception(at)
        now = studies.get_study(conn, study_id)
        done = sum(now["counts"][k] for k in ("complete", "pruned", "diverged", "failed"))
        labels = sidebar_labels(at)
        if now["status"] in ("queued", "running") and now["runner_alive"]:
            # what the database said just before this run is on screen, not an older count
            assert labels == ["live one"], labels
            seen.add(next(c.value for c in at.sidebar.caption if c.value.endswith(" trials")))
        if now["status"] == "complete" and not now["runner_alive"]:
            break
        time.sleep(0.2)
    assert studies.get_study(conn, study_id)["status"] == "complete"
    assert done == 6, seen
    fragments.clear()
    at.run()
    assert sidebar_labels(at) == []
    assert any("Nothing is running" in c.value for c in at.sidebar.caption)
    assert overview_progress(at) == ["6/6 trials"] and "✓ done" in [m.value for m in at.markdown]
    assert ("_sidebar_body", None) in fragments and ("lists", None) in fragments  # no timer
