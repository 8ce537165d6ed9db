"""Live redraws paced to the machine: how often the live parts of a page re-read SQLite.

A live part is a ``st.fragment`` with a ``run_every`` timer (a study's progress and charts, a
babysitting session's numbers, curves and log, the sidebar's "what is running"). When one
redraw takes longer than its timer (a study's own workers fill both cores), the page is always
mid-redraw: charts blank for seconds and clicks wait for elements that never settle. So every
live part goes through :func:`live_part`, which times each of its redraws, and one
:class:`Pace` per browser tab (session state) picks the timer for all of them:

- the page's redraw cost is the sum of its live parts' latest durations;
- the interval is the smallest of :data:`BUCKETS` at least :data:`HEADROOM` times that cost
  (the largest bucket when none is), raised at once;
- it is lowered one bucket at a time, and only after :data:`FALL_AFTER` redraws of every part
  in a row that would fit the lower bucket with room to spare (:data:`FALL_MARGIN`), so a cost
  near a boundary does not flap between two intervals.

Streamlit reads ``run_every`` when a fragment is declared (a full run of the page), not on the
fragment's own timed reruns, and the browser replaces the timer of a fragment it knows when a
full run declares it again with another interval. So when the pace changes, one full rerun
follows: asked by the part that saw it in a timed rerun, or by the router at the end of a full
run (:func:`end_run`: once, not after each part). The router calls :func:`begin_run` at the
top of every full run: the parts of the page drawn now are the ones that count (a page left
behind costs nothing).
:func:`refresh_note` shows the current interval discreetly ("updates every 4 s").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

BUCKETS = (1.0, 2.0, 4.0, 8.0)  # seconds between redraws a live part may get
HEADROOM = 3.0  # a redraw may use at most a third of its interval
FALL_MARGIN = 0.75  # step down only when HEADROOM x cost <= 0.75 x the lower bucket...
FALL_AFTER = 3  # ...for this many redraws of every live part in a row

clock: Callable[[], float] = time.perf_counter  # tests replace it (a slow or a fast redraw)

_KEY = "_live.pace"


def next_interval(current: float, cost: float, fast: int, parts: int = 1) -> tuple[float, int]:
    """The next interval and fast-redraw streak, given the current interval (a bucket), the
    page's redraw cost in seconds, the streak so far and how many live parts the page has."""
    want = next((b for b in BUCKETS if b >= HEADROOM * cost), BUCKETS[-1])
    if want >= current:
        return want, 0
    lower = max(b for b in BUCKETS if b < current)
    if HEADROOM * cost > FALL_MARGIN * lower:
        return current, 0
    fast += 1
    if fast >= FALL_AFTER * max(1, parts):
        return lower, 0
    return current, fast


@dataclass
class Pace:
    """One tab's live-redraw pace: the interval (a bucket), each live part's latest redraw
    duration, and the streak of redraws that would fit a lower bucket."""

    interval: float = BUCKETS[0]
    costs: dict[str, float] = field(default_factory=dict)
    fast: int = 0
    declared: dict[str, tuple[float, float]] = field(default_factory=dict)  # (every, floor)
    in_full_run: bool = False
    parts: int = 0  # live parts the last full run declared (costs restart at each full run)

    @property
    def cost(self) -> float:
        return sum(self.costs.values())

    def record(self, part: str, seconds: float) -> float:
        """Note one redraw of ``part``; the interval from now on."""
        self.costs[part] = max(0.0, float(seconds))
        self.interval, self.fast = next_interval(self.interval, self.cost, self.fast,
                                                 max(self.parts, len(self.costs)))
        return self.interval


def pace() -> Pace:
    """This tab's pace (created on first use)."""
    found = st.session_state.get(_KEY)
    if not isinstance(found, Pace):
        found = st.session_state[_KEY] = Pace()
    return found


def begin_run() -> None:
    """At the top of a full run: forget the parts measured before (another page, perhaps);
    the parts drawn in this run measure themselves again."""
    p = pace()
    p.costs.clear()
    p.declared.clear()
    p.in_full_run = True


def end_run() -> bool:
    """At the end of a full run (also when it was cut short): True when a live part was
    declared with an interval the pace has left since (the caller then reruns the app once,
    so the timers follow; a cut-short run is rerun anyway)."""
    p = pace()
    p.in_full_run = False
    p.parts = len(p.declared)
    return any(max(floor, p.interval) != every for every, floor in p.declared.values())


def interval(floor: float = BUCKETS[0]) -> float:
    """The interval a live part declared now gets: the pace, but never under ``floor``."""
    return max(floor, pace().interval)


def live_part(name: str, body: Callable[..., None], *args, live: bool,
              floor: float = BUCKETS[0]) -> None:
    """Draw ``body(*args)`` now as a fragment and, while ``live``, again every paced interval
    (at least ``floor`` seconds); each redraw is timed under ``name``. When the pace moves
    away from the interval this fragment was declared with, one full rerun declares every
    live part again with the new one."""
    every = interval(floor) if live else None
    if every is not None:
        pace().declared[name] = (every, floor)

    @functools.wraps(body)  # the fragment's id comes from the body's name and place
    def timed(*a) -> None:
        start = clock()
        st.session_state["_live.every"] = every
        body(*a)
        if every is None:  # drawn once: no timer to pace
            return
        p = pace()
        now = p.record(name, clock() - start)
        if max(floor, now) != every and not p.in_full_run:  # a timed rerun: redeclare all
            st.rerun(scope="app")

    st.fragment(run_every=every)(timed)(*args)


def refresh_note() -> None:
    """Inside a live part's body: a discreet caption with its current interval."""
    every = st.session_state.get("_live.every")
    if every is not None:
        st.caption(f":material/update: updates every {every:g} s")
