"""Studies, trials and per-epoch metrics in SQLite: the rows the runner writes and the UI reads.

A study holds its search space, sampler, scheduler and dataset as JSON (validated by
``engine.study.facade`` before they get here). Its trials are created up front in state ``waiting``
with their sampled ``params`` and ``unit`` vector; the runner moves them through
``running`` to a terminal state and appends one metrics row per epoch together with the
trial's latest checkpoint, in one short transaction per segment (``record_segment``), so a
checkpoint and the curve it ends are never out of step.

The stored study status is what the runner last wrote; ``get_study`` and ``list_studies`` add
the derived ``status``, which is ``"interrupted"`` when the runner that should be writing
(stored ``running`` or ``stopping``) is no longer alive.
"""

from __future__ import annotations

import json
import sqlite3

from engine.storage import runners
from engine.storage.actions import forget_study
from engine.storage.blobs import (
    NotFoundError,
    atomic,
    delete_checkpoint_if_unused,
    get_upload,
    save_upload,
)
from engine.storage.db import now
from engine.storage.lineage import record_exploit, record_round, trial_lineage
from engine.storage.trials import (
    METRIC_COLUMNS,
    PENDING_STATES,
    TERMINAL_STATES,
    TRIAL_STATES,
    _check,
    add_trials,
    get_trial,
    list_trials,
    record_epochs,
    record_segment,
    set_trial_state,
    study_metrics,
    study_trials_and_metrics,
    trial_checkpoint,
    trial_metrics,
)

__all__ = [
    "STUDY_STATUSES", "TRIAL_STATES", "TERMINAL_STATES", "METRIC_COLUMNS", "NotFoundError",
    "PENDING_STATES", "create_study", "get_study", "list_studies", "set_study_status",
    "set_study_belief", "study_seeds", "delete_study", "add_trials", "list_trials", "get_trial",
    "set_trial_state", "record_epochs", "record_segment", "trial_checkpoint", "trial_metrics",
    "study_metrics", "study_trials_and_metrics", "stop_unattended", "save_upload", "get_upload",
    "record_exploit", "record_round", "trial_lineage",
]

STUDY_STATUSES = ("queued", "running", "stopping", "stopped", "complete", "failed")


# Sampler settings whose default changed after studies were stored without them:
# kind -> {key: (the value before the change, today's default)}.
CHANGED_DEFAULTS = {
    # 4dc3cb6, 2026-12-03: a grid's points moved from the ends of each axis to cell centres
    "grid": {"ends": (True, False)},
    # 2026-12-04: the gp's prior mean became the worst result ("pessimistic"; was "mean")
    "gp": {"prior_mean": ("mean", "pessimistic")},
}


def stored_sampler(sampler: dict, *, written: bool) -> dict:
    """A sampler's JSON as it is written (``written=True``) or read back.

    For a setting in ``CHANGED_DEFAULTS`` every sampler written since the change says it: a
    new study without it gets today's default written, and a stored sampler without it can
    only be from before, so it is read back with the value it was created with: a resumed
    study keeps searching as it began."""
    changed = CHANGED_DEFAULTS.get(sampler.get("kind"), {})
    missing = {key: pair[1 if written else 0] for key, pair in changed.items()
               if key not in sampler}
    return {**sampler, **missing} if missing else sampler


def create_study(
    conn: sqlite3.Connection,
    *,
    name: str,
    space: dict,
    sampler: dict,
    scheduler: dict,
    dataset: dict,
    seed: int,
    n_trials: int | None,
    workers: int,
    executor_address: str = "",
    parent_id: int | None = None,
    box: dict | None = None,
    objective: dict | None = None,
    epoch_budget: int | None = None,
) -> int:
    """Insert a study in status ``queued`` and return its id (no trials: its runner asks them).
    ``n_trials`` / ``epoch_budget`` None: no budget of that kind."""
    at = now()
    with atomic(conn):
        cursor = conn.execute(
            "INSERT INTO studies (name, created_at, updated_at, space_json, sampler_json,"
            " scheduler_json, dataset_json, seed, n_trials, workers, executor_address,"
            " parent_id, box_json, objective_json, epoch_budget)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name, at, at, json.dumps(space),
                json.dumps(stored_sampler(sampler, written=True)), json.dumps(scheduler),
                json.dumps(dataset), int(seed), int(n_trials or 0), int(workers),
                executor_address, parent_id, None if box is None else json.dumps(box),
                json.dumps(objective or {"metric": "val_acc"}), epoch_budget,
            ),
        )
    return int(cursor.lastrowid)


def _study_dict(row: sqlite3.Row, alive: bool) -> dict:
    study = {
        key: row[key]
        for key in (
            "id", "name", "created_at", "updated_at", "seed", "n_trials", "workers",
            "executor_address", "parent_id", "message", "finished_at", "notes",
        )
    }
    study["archived"] = bool(row["archived"])
    study["rank"] = json.loads(row["rank_json"]) if row["rank_json"] else {"at": "best"}
    for key in ("space", "sampler", "scheduler", "dataset"):
        study[key] = json.loads(row[f"{key}_json"])
    study["sampler"] = stored_sampler(study["sampler"], written=False)
    study["box"] = json.loads(row["box_json"]) if row["box_json"] else None
    study["n_trials"] = row["n_trials"] or None
    study["epoch_budget"] = row["epoch_budget"]
    study["objective"] = json.loads(row["objective_json"] or '{"metric": "val_acc"}')
    study["belief"] = json.loads(row["belief_json"]) if row["belief_json"] else None
    study["stored_status"] = row["status"]
    interrupted = row["status"] in ("running", "stopping") and not alive
    study["status"] = "interrupted" if interrupted else row["status"]
    study["runner_alive"] = alive
    return study


def _summaries(conn: sqlite3.Connection, study_id: int | None) -> dict[int, dict]:
    where, args = ("WHERE study_id = ?", (study_id,)) if study_id is not None else ("", ())
    out: dict[int, dict] = {}
    for r in conn.execute(
        f"SELECT study_id, state, COUNT(*) AS n, MAX(best_val_acc) AS best,"
        f" SUM(epochs_done) AS epochs FROM trials {where} GROUP BY study_id, state",
        args,
    ):
        s = out.setdefault(
            r["study_id"],
            {"counts": dict.fromkeys(TRIAL_STATES, 0), "best_val_acc": None, "epochs_done": 0},
        )
        s["counts"][r["state"]] = r["n"]
        s["epochs_done"] += r["epochs"] or 0
        if r["best"] is not None and (s["best_val_acc"] is None or r["best"] > s["best_val_acc"]):
            s["best_val_acc"] = r["best"]
    return out


def _with_summary(study: dict, summary: dict | None) -> dict:
    summary = summary or {
        "counts": dict.fromkeys(TRIAL_STATES, 0), "best_val_acc": None, "epochs_done": 0
    }
    study.update(summary)
    return study


def get_study(conn: sqlite3.Connection, study_id: int) -> dict:
    """The study with decoded JSON, stored and derived ``status``, ``runner`` info, ``counts``
    per trial state, ``best_val_acc`` and ``epochs_done``; ``NotFoundError`` if absent."""
    row = conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no study with id={study_id}")
    study = _study_dict(row, runners.runner_alive(conn, "study", study_id))
    study["runner"] = runners.runner_info(conn, "study", study_id)
    return _with_summary(study, _summaries(conn, study_id).get(study_id))


def list_studies(conn: sqlite3.Connection) -> list[dict]:
    """Every study, newest first, as ``get_study`` without ``runner`` (three queries in all)."""
    at = now()
    alive = {
        r["owner_id"]: runners._row_alive(r, at)
        for r in conn.execute("SELECT * FROM runners WHERE kind = 'study'")
    }
    summaries = _summaries(conn, None)
    rows = conn.execute("SELECT * FROM studies ORDER BY id DESC").fetchall()
    return [
        _with_summary(_study_dict(r, alive.get(r["id"], False)), summaries.get(r["id"]))
        for r in rows
    ]


def study_seeds(conn: sqlite3.Connection) -> set[int]:
    """The seed of every study in the database."""
    return {int(r[0]) for r in conn.execute("SELECT seed FROM studies")}


def set_study_status(
    conn: sqlite3.Connection, study_id: int, status: str, message: str | None = None
) -> None:
    """Store the study's status (and message); ``finished_at`` is set for complete/failed."""
    _check(status, STUDY_STATUSES, "status")
    at = now()
    finished = at if status in ("complete", "failed") else None
    with atomic(conn):
        conn.execute(
            "UPDATE studies SET status = ?, message = COALESCE(?, message), updated_at = ?,"
            " finished_at = ? WHERE id = ?",
            (status, message, at, finished, study_id),
        )


def set_study_belief(conn: sqlite3.Connection, study_id: int, belief: dict | None) -> None:
    """Store what the study's sampler believes now (its ``describe()``, JSON), or clear it."""
    with atomic(conn):
        conn.execute(
            "UPDATE studies SET belief_json = ? WHERE id = ?",
            (None if belief is None else json.dumps(belief), study_id),
        )


def stop_unattended(conn: sqlite3.Connection, study_id: int) -> None:
    """No runner is alive: mark its running trials ``stopped`` and the study ``stopped``."""
    with atomic(conn):
        conn.execute(
            "UPDATE trials SET state = 'stopped', updated_at = ? WHERE study_id = ?"
            " AND state = 'running'", (now(), study_id),
        )
        set_study_status(conn, study_id, "stopped")


def delete_study(conn: sqlite3.Connection, study_id: int) -> None:
    """Delete a study with its trials, metrics, checkpoints, intents and actions (its runner must be
    gone: ``ValueError`` while one is alive)."""
    if runners.runner_alive(conn, "study", study_id):
        raise ValueError(f"study {study_id} has a live runner; stop it before deleting")
    with atomic(conn):
        ids = [r[0] for r in conn.execute(
            "SELECT checkpoint_id FROM trials WHERE study_id = ? AND checkpoint_id IS NOT NULL",
            (study_id,),
        )]
        for table in ("metrics", "trial_lineage"):
            conn.execute(
                f"DELETE FROM {table} WHERE trial_id IN (SELECT id FROM trials WHERE study_id = ?)",
                (study_id,),
            )
        conn.execute("UPDATE studies SET parent_id = NULL WHERE parent_id = ?", (study_id,))
        forget_study(conn, study_id)
        conn.execute("DELETE FROM trials WHERE study_id = ?", (study_id,))
        for checkpoint_id in ids:
            delete_checkpoint_if_unused(conn, checkpoint_id)
        conn.execute("DELETE FROM intents WHERE kind = 'study' AND owner_id = ?", (study_id,))
        conn.execute("DELETE FROM runners WHERE kind = 'study' AND owner_id = ?", (study_id,))
        conn.execute("DELETE FROM studies WHERE id = ?", (study_id,))


