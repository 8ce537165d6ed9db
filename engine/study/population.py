"""Population-based training in the study runner: the round boundary, synchronously.

With a ``pbt`` scheduler every trial trains ``interval`` epochs per round (in segments, as any
study). A trial that reaches a round boundary below the budget *waits* there; when no trial of
the population is queued or training any more, :func:`next_round` ranks the waiting trials by
their score at that epoch and applies ``exploit_explore``: in one transaction, each recipient
takes its donor's checkpoint and the explored params (``record_exploit``, one lineage row
each). Then all of them train the next round. Trials that diverged or failed have left the
population; the last round ends the others ``complete``.

A restarted runner finds where it was from the database alone (:func:`waits_at_load`): a trial
at a boundary waits unless that boundary was already applied (a lineage row at that epoch, or a
trial of the study already past it). The round's generator is seeded by the study's seed and
the epoch, so a resumed study makes the same choices as an uninterrupted one would have.
"""

from __future__ import annotations

import logging
import sqlite3

from engine.storage import studies as store
from engine.storage.db import transaction

log = logging.getLogger("engine.study.runner")


def waits_at_load(conn: sqlite3.Connection, study_id: int, scheduler) -> set[int]:
    """The boundary epochs whose exploit is still to come, for trials loaded at that epoch."""
    applied = {r[0] for r in conn.execute(
        "SELECT DISTINCT l.epoch FROM trial_lineage l JOIN trials t ON t.id = l.trial_id"
        " WHERE t.study_id = ?", (study_id,))}
    furthest = conn.execute(
        "SELECT COALESCE(MAX(epochs_done), 0) FROM trials WHERE study_id = ?", (study_id,)
    ).fetchone()[0]
    return {e for e in scheduler.rungs[:-1] if e not in applied and e >= furthest}


def is_boundary(scheduler, epochs_done: int) -> bool:
    """Whether a trial that has trained ``epochs_done`` epochs must wait for the population."""
    return epochs_done in scheduler.rungs[:-1]


def next_round(
    conn: sqlite3.Connection, study: dict, scheduler, space, runs: list, trial_config
) -> dict[int, tuple[int, dict]]:
    """Exploit and explore at the boundary where every run of ``runs`` waits; update the runs'
    ``model`` and ``config`` for the recipients and return ``{recipient: (donor, params)}``.

    ``trial_config(params) -> (model, config)`` builds a run's work-unit dicts."""
    import numpy as np  # not at import: the runner starts its workers before loading NumPy

    epochs = {run.epochs_done for run in runs}
    if len(epochs) != 1:
        raise RuntimeError(f"the population is not at one round boundary: epochs {epochs}")
    epoch = epochs.pop()
    ids = [run.id for run in runs]
    key = "val_acc" if scheduler.maximize else "val_loss"
    marks = ",".join("?" * len(ids))
    scores = {r[0]: r[1] for r in conn.execute(
        f"SELECT trial_id, {key} FROM metrics WHERE epoch = ? AND trial_id IN ({marks})",
        (epoch, *ids))}
    params = {t["id"]: t["params"] for t in store.list_trials(conn, study["id"]) if t["id"] in ids}
    rng = np.random.default_rng([study["seed"], epoch])
    plan = scheduler.exploit_explore({i: scores.get(i) for i in ids}, params, space, rng)
    with transaction(conn):
        for recipient, (donor, new) in sorted(plan.items()):
            space.unit_from_params(new)  # explored values stay inside the space
            store.record_exploit(conn, recipient, donor, epoch, new)
    by_id = {run.id: run for run in runs}
    for recipient, (donor, new) in plan.items():
        by_id[recipient].model, by_id[recipient].config = trial_config(new)
        log.info("study %s epoch %d: trial %d copies trial %d", study["id"], epoch,
                 by_id[recipient].number, by_id[donor].number)
    return plan
