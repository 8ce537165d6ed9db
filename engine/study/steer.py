"""The study runner's side of the actions on its study (``engine.study.actions``).

The runner applies the queued actions (intent ``"action"``, at its start, and before it
finishes) and then brings what it holds in memory in step with the database, which it reads
back whole: the study (budget, space, rank), the space, the history the sampler learns from
(units recomputed after a space change), and its queue of trials to train: trials made by hand
or extended join the queue, trials stopped by hand leave it; one stopped by hand while its
segment trains ends ``cancelled`` when the segment comes back (its epochs are kept).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque

from engine.storage import studies as store
from engine.study.actions import apply_pending

log = logging.getLogger("engine.runner")

QUEUED_STATES = ("waiting", "running", "stopped")  # pending and not at a round boundary


def apply_actions(runner, conn: sqlite3.Connection) -> list[dict]:
    """Apply the study's queued actions and bring the runner in step; the actions applied."""
    applied = apply_pending(conn, runner.study_id)
    for action in applied:
        log.info("study %s: action %s %s%s", runner.study_id, action["kind"], action["payload"],
                 f" refused: {action['error']}" if action["error"] else "")
    if any(not a["error"] for a in applied):
        sync(runner, conn)
    return applied


def runs_in_flight(runner) -> list:
    """The trial runs of the segments in flight: a stacked unit (``stacking.Stack``) carries
    several."""
    if not runner.slots:
        return []
    return [run for unit, _ in runner.slots.inflight.values()
            for run in getattr(unit, "runs", [unit])]


def sync(runner, conn: sqlite3.Connection) -> None:
    """Re-read the study and its trials; rebuild the runner's history and trial queue."""
    from engine.search import Space, history_from_rows

    study = store.get_study(conn, runner.study_id)
    runner.study = study
    runner.space = Space.from_dict(study["space"])
    trials, metrics = store.study_trials_and_metrics(conn, runner.study_id)
    runner.history = history_from_rows(trials, metrics, runner.objective, seed=study["seed"],
                                       n_trials=study["n_trials"])
    runner.exhausted = False  # a new range or budget: the sampler may have more to propose
    by_id = {t["id"]: t for t in trials}
    inflight = {run.id: run for run in runs_in_flight(runner)}
    runner.queue = deque(r for r in runner.queue if by_id[r.id]["state"] in QUEUED_STATES)
    runner.paused = [r for r in runner.paused if by_id[r.id]["state"] == "paused"]
    runner.cancelled = {i for i in inflight if by_id[i]["state"] == "cancelled"}
    known = {r.id for r in runner.queue} | {r.id for r in runner.paused} | set(inflight)
    for run in [*runner.queue, *runner.paused, *inflight.values()]:
        run.target = by_id[run.id]["target_epochs"]
    for t in trials:
        if t["id"] not in known and t["state"] in QUEUED_STATES:
            runner.queue.append(runner._new_run(t))


def state_after(runner, run, state: str) -> str:
    """The state a segment's trial ends in: ``cancelled`` if it was stopped by hand while the
    segment trained (a diverged one stays diverged)."""
    if run.id in runner.cancelled and state != "diverged":
        runner.cancelled.discard(run.id)
        return "cancelled"
    return state
