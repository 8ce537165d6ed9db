"""A round boundary of population-based training, as the study runner applies it.

With a ``pbt`` scheduler every trial pauses at each round boundary below the budget (its stored
state is ``paused``). Once no trial is queued or training any more, the runner calls
:func:`next_round`: the scheduler's ``on_pause`` ranks the paused trials by their score at that
epoch and decides who copies whom; in one transaction each recipient takes its donor's checkpoint
and the explored params (``record_round``: one lineage row each) and every paused trial is set
running again. Trials that diverged or failed have left the population; the last round ends the
others ``complete``.

A runner killed before that transaction finds every trial of the round still ``paused`` and
applies it again with the same generator (seeded by the study's seed and the epoch), so a resumed
study makes the same choices as an uninterrupted one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace

from engine.search import History, Scheduler, Space
from engine.storage import studies as store
from engine.storage.db import retrying

log = logging.getLogger("engine.study")


def next_round(
    conn: sqlite3.Connection, study: dict, scheduler: Scheduler, space: Space, runs: list,
    history: History, configs: Callable[[dict], tuple[dict, dict]],
) -> History:
    """Apply ``scheduler.on_pause`` to the paused ``runs`` (all at one epoch) and store it; update
    the recipients' ``model``/``config`` (``configs(params) -> (model, config)``) and every
    run's state; return the history with the new params and states."""
    import numpy as np  # not at import: the runner starts its workers before loading NumPy

    epochs = {run.epochs_done for run in runs}
    if len(epochs) != 1:
        raise RuntimeError(f"the population is not at one round boundary: epochs {epochs}")
    epoch = epochs.pop()
    by_number = {run.number: run for run in runs}
    rng = np.random.default_rng([study["seed"], epoch])
    plan = scheduler.on_pause(sorted(by_number), history, space, rng)
    exploits = []
    for recipient, (donor, params) in sorted(plan.items()):
        space.unit_from_params(params)  # explored values stay inside the space
        exploits.append((by_number[recipient].id, by_number[donor].id, params))
    retrying(lambda: store.record_round(conn, epoch, exploits, [r.id for r in runs]),
             what=f"study {study['id']}: record the round at epoch {epoch}")
    for recipient, (donor, params) in plan.items():
        run = by_number[recipient]
        run.model, run.config = configs(params)
        log.info("study %s epoch %d: trial %d copies trial %d", study["id"], epoch,
                 recipient, donor)
    for run in runs:
        run.state = "running"
        record = history.by_number(run.number)
        params = plan[run.number][1] if run.number in plan else record.params
        history = history.with_trial(replace(record, state="running", params=params))
    return history
