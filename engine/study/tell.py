"""The tell half of the study runner: what a finished work unit does to its study.

``engine.study.runner`` asks and submits; when a segment comes back its loop hands the future
here (``handle``). A segment's result is recorded in one transaction (metrics + checkpoint +
state, ``record``); at a milestone the scheduler decides (continue / pause / prune /
complete); a trial that reaches a terminal state is **told** to the sampler and the sampler's
``describe()`` is stored as the study's belief (``told``). A worker that died costs the trial
one retry from its checkpoint, and after ``MAX_WORKER_DEATHS`` it fails (``worker_died``).
A stacked unit (``engine.study.stacking.handle``) records each member through the same
functions, so a member's result is written exactly as a solo segment's.

Functions over the runner (its ``history``, ``queue``, ``paused``, ``scheduler``, ``sampler``),
as ``engine.study.steer`` and ``engine.study.stacking`` are.
"""

from __future__ import annotations

import logging
import sqlite3
import traceback
from concurrent.futures import Future
from dataclasses import replace

from engine.run.execution import describe_worker_death, is_worker_death
from engine.storage import studies as store
from engine.storage.db import retrying
from engine.study import steer
from engine.study.trials import TrialRun

log = logging.getLogger("engine.runner")

MAX_WORKER_DEATHS = 3
STATES_AFTER = {"complete": "complete", "prune": "pruned", "pause": "paused"}


def handle(runner, conn: sqlite3.Connection, future: Future, run, generation: int) -> None:
    """Record the unit ``future`` trained for ``run`` (a ``TrialRun``, or a stacked unit's
    ``Stack``): its result, its failure, or its worker's death."""
    if not isinstance(run, TrialRun):  # a stacked unit's runs
        from engine.study import stacking

        stacking.handle(runner, conn, future, run, generation)
        return
    if future.cancelled():
        runner.queue.appendleft(run)
        return
    exc = future.exception()
    if exc is not None and is_worker_death(exc):
        worker_died(runner, conn, run, exc, generation,
                    charged=runner.slots.charged(future, generation))
        return
    try:
        if exc is not None:
            raise exc
        record(runner, conn, future.result(), run)
    except Exception as err:
        text = "".join(traceback.format_exception(err))
        log.warning("study %s trial %s failed:\n%s", runner.study_id, run.number, text)
        runner._set_state(conn, run, "failed", error=text)
        told(runner, conn, run)


def worker_died(runner, conn: sqlite3.Connection, run: TrialRun, exc: BaseException, gen: int,
                *, charged: bool = True) -> None:
    """The worker of ``run``'s unit died: retry it from its checkpoint, or fail it after
    ``MAX_WORKER_DEATHS``. ``charged`` False: another unit's worker died (the pool broke
    under both), so this one goes on without a death counted."""
    runner.slots.died(exc, gen)  # a broken local pool takes no more work: replace it
    if not charged:
        log.info("study %s trial %s: retried after another worker died", runner.study_id,
                 run.number)
        runner.queue.appendleft(run)
        return
    run.deaths += 1
    what = describe_worker_death(exc)
    log.warning("study %s trial %s: %s (%d)", runner.study_id, run.number, what, run.deaths)
    if run.deaths >= MAX_WORKER_DEATHS:
        runner._set_state(
            conn, run, "failed", attempts=run.deaths,
            error=f"{what}; gave up after {run.deaths} worker deaths, last checkpoint at "
            f"epoch {run.epochs_done}",
        )
        told(runner, conn, run)
    else:
        runner._set_state(conn, run, run.state, attempts=run.deaths)
        runner.queue.appendleft(run)  # retried from its last checkpoint


def record(runner, conn: sqlite3.Connection, result: dict, run: TrialRun) -> None:
    """Commit one segment's ``result`` (metrics + checkpoint + the state it leads to) and put
    the run where it goes next: the front of the queue, the paused, or told (finished)."""
    from engine.search import CONTINUE

    metrics = result["metrics"]
    done = run.epochs_done + len(metrics)
    record_ = runner.history.by_number(run.number)
    scores = dict(record_.scores)
    for m in metrics:
        score = runner.objective.score(m)
        if score is not None:
            scores[int(m["epoch"])] = score
    error = None
    if result["status"] == "diverged":
        state, error = "diverged", result.get("message") or "diverged"
    else:
        decision = CONTINUE
        milestone = runner.scheduler.next_milestone(run.number, run.epochs_done, run.target)
        if metrics and done >= milestone:
            seen = runner.history.with_trial(replace(record_, scores=scores))
            decision = runner.scheduler.decide(run.number, done, seen)
        state = STATES_AFTER.get(decision, "stopped" if runner.stopping else "running")
    state = steer.state_after(runner, run, state)
    retrying(lambda: store.record_segment(
        conn, run.id, metrics, result["checkpoint"], sha256=result.get("sha256"),
        state=state, error=error,
    ), what=f"study {runner.study_id} trial {run.number}: record epochs to {done}")
    runner.history = runner.history.with_trial(replace(record_, scores=scores, state=state))
    if metrics:
        run.seconds_per_epoch = sum(m["seconds"] for m in metrics) / len(metrics)
    run.epochs_done, run.state = done, state
    log.info(
        "study %s trial %s: epoch %d/%d %s%s", runner.study_id, run.number, done, run.target,
        state, f" val_acc={metrics[-1]['val_acc']:.4f}" if metrics else "",
    )
    if state == "paused":
        runner.paused.append(run)
    elif state in store.PENDING_STATES:
        runner.queue.appendleft(run)  # depth-first: it goes on before a new trial is asked
    else:
        told(runner, conn, run)


def told(runner, conn: sqlite3.Connection, run: TrialRun) -> None:
    """Tell the sampler that ``run`` finished; store what it believes now."""
    history = runner.history
    runner.sampler.tell(runner.space, history, history.by_number(run.number))
    belief = runner.sampler.describe(runner.space, history)
    if belief is not None:
        retrying(lambda: store.set_study_belief(conn, runner.study_id, belief))
