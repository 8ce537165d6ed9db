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
import math
import sqlite3

from engine.storage import runners
from engine.storage.blobs import (
    NotFoundError,
    atomic,
    delete_checkpoint_if_unused,
    get_upload,
    load_checkpoint,
    save_checkpoint,
    save_upload,
)
from engine.storage.db import now
from engine.storage.lineage import record_exploit, record_round, trial_lineage

__all__ = [
    "STUDY_STATUSES", "TRIAL_STATES", "TERMINAL_STATES", "METRIC_COLUMNS", "NotFoundError",
    "PENDING_STATES", "create_study", "get_study", "list_studies", "set_study_status",
    "set_study_belief", "delete_study", "add_trials", "list_trials", "get_trial",
    "set_trial_state", "record_epochs", "record_segment", "trial_checkpoint", "trial_metrics",
    "study_metrics", "study_trials_and_metrics", "stop_unattended", "save_upload", "get_upload",
    "record_exploit", "record_round", "trial_lineage",
]

STUDY_STATUSES = ("queued", "running", "stopping", "stopped", "complete", "failed")
TRIAL_STATES = ("waiting", "running", "paused", "complete", "pruned", "diverged", "failed",
                "stopped")
TERMINAL_STATES = ("complete", "pruned", "diverged", "failed")
PENDING_STATES = ("waiting", "running", "paused", "stopped")  # asked, not finished
METRIC_FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "learning_rate", "seconds")
METRIC_COLUMNS = ("trial_id", "number", "epoch", *METRIC_FIELDS)


def _check(value: str, valid: tuple[str, ...], field: str) -> None:
    if value not in valid:
        raise ValueError(f"{field} must be one of {valid}, got {field}={value!r}")


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
                name, at, at, json.dumps(space), json.dumps(sampler), json.dumps(scheduler),
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
            "executor_address", "parent_id", "message", "finished_at",
        )
    }
    for key in ("space", "sampler", "scheduler", "dataset"):
        study[key] = json.loads(row[f"{key}_json"])
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
    """Delete a study with its trials, metrics, checkpoints and intents (its runner must be
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
        conn.execute("DELETE FROM trials WHERE study_id = ?", (study_id,))
        for checkpoint_id in ids:
            delete_checkpoint_if_unused(conn, checkpoint_id)
        conn.execute("DELETE FROM intents WHERE kind = 'study' AND owner_id = ?", (study_id,))
        conn.execute("DELETE FROM runners WHERE kind = 'study' AND owner_id = ?", (study_id,))
        conn.execute("DELETE FROM studies WHERE id = ?", (study_id,))


def add_trials(conn: sqlite3.Connection, study_id: int, trials: list[dict]) -> list[int]:
    """Append ``waiting`` trials, each ``{"params": dict, "unit": list[float],
    "target_epochs": int}`` (optional ``"origin"``: ``"sampler"``, the default, or ``"user"``),
    numbered on from the study's last trial; return their ids."""
    at = now()
    ids = []
    with atomic(conn):
        start = conn.execute(
            "SELECT COALESCE(MAX(number), -1) + 1 FROM trials WHERE study_id = ?", (study_id,)
        ).fetchone()[0]
        for i, trial in enumerate(trials):
            cursor = conn.execute(
                "INSERT INTO trials (study_id, number, params_json, unit_json, target_epochs,"
                " origin, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    study_id, start + i, json.dumps(trial["params"]),
                    json.dumps([float(u) for u in trial["unit"]]),
                    int(trial["target_epochs"]), trial.get("origin", "sampler"), at, at,
                ),
            )
            ids.append(int(cursor.lastrowid))
    return ids


_TRIAL_KEYS = (
    "id", "study_id", "number", "state", "attempts", "error", "epochs_done", "target_epochs",
    "best_val_acc", "best_val_loss", "last_val_acc", "last_val_loss", "seconds",
    "checkpoint_id", "origin", "created_at", "updated_at",
)


def _trial_dict(row: sqlite3.Row) -> dict:
    trial = {key: row[key] for key in _TRIAL_KEYS}
    trial["params"] = json.loads(row["params_json"])
    trial["unit"] = json.loads(row["unit_json"])
    return trial


def list_trials(
    conn: sqlite3.Connection, study_id: int, states: tuple[str, ...] | None = None
) -> list[dict]:
    """The study's trials in number order (optionally only those in ``states``)."""
    sql, args = "SELECT * FROM trials WHERE study_id = ?", [study_id]
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        args += list(states)
    return [_trial_dict(r) for r in conn.execute(sql + " ORDER BY number", args)]


def get_trial(conn: sqlite3.Connection, trial_id: int) -> dict:
    """One trial as in ``list_trials``; ``NotFoundError`` if absent."""
    row = conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no trial with id={trial_id}")
    return _trial_dict(row)


def set_trial_state(
    conn: sqlite3.Connection,
    trial_id: int,
    state: str,
    *,
    error: str | None = None,
    attempts: int | None = None,
) -> None:
    """Move a trial to ``state`` (``error``/``attempts`` replaced when given)."""
    _check(state, TRIAL_STATES, "state")
    with atomic(conn):
        conn.execute(
            "UPDATE trials SET state = ?, error = COALESCE(?, error),"
            " attempts = COALESCE(?, attempts), updated_at = ? WHERE id = ?",
            (state, error, attempts, now(), trial_id),
        )


def _finite_row(trial_id: int, m: dict) -> tuple:
    values = []
    for field in METRIC_FIELDS:
        value = float(m[field])
        if not math.isfinite(value):
            raise ValueError(
                f"trial {trial_id} epoch {m['epoch']}: metric {field}={value} is not finite;"
                " a diverged epoch is reported as a message, never stored"
            )
        values.append(value)
    return (trial_id, int(m["epoch"]), *values)


def record_epochs(conn: sqlite3.Connection, trial_id: int, metrics: list[dict]) -> int:
    """Append per-epoch metrics (epochs must continue the trial's curve without a gap or a
    repeat) and refresh the trial's summary columns; return the new ``epochs_done``."""
    with atomic(conn):
        row = conn.execute(
            "SELECT epochs_done, best_val_acc, best_val_loss, seconds FROM trials WHERE id = ?",
            (trial_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no trial with id={trial_id}")
        done = row["epochs_done"]
        if not metrics:
            return done
        epochs = [int(m["epoch"]) for m in metrics]
        if epochs != list(range(done + 1, done + 1 + len(metrics))):
            raise ValueError(
                f"trial {trial_id} has {done} epochs recorded; new metrics must be epochs "
                f"{done + 1}..{done + len(metrics)}, got {epochs}"
            )
        rows = [_finite_row(trial_id, m) for m in metrics]
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        accs = [r[5] for r in rows] + [v for v in [row["best_val_acc"]] if v is not None]
        losses = [r[4] for r in rows] + [v for v in [row["best_val_loss"]] if v is not None]
        conn.execute(
            "UPDATE trials SET epochs_done = ?, best_val_acc = ?, best_val_loss = ?,"
            " last_val_acc = ?, last_val_loss = ?, seconds = ?, updated_at = ? WHERE id = ?",
            (
                epochs[-1], max(accs), min(losses), rows[-1][5], rows[-1][4],
                row["seconds"] + sum(r[7] for r in rows), now(), trial_id,
            ),
        )
    return epochs[-1]


def record_segment(
    conn: sqlite3.Connection,
    trial_id: int,
    metrics: list[dict],
    checkpoint: bytes | None,
    *,
    sha256: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> int:
    """One transaction: append ``metrics``, make ``checkpoint`` the trial's latest (verified
    against ``sha256`` when given; the previous one is deleted) and optionally set ``state`` /
    ``error``. Returns the new ``epochs_done``."""
    with atomic(conn):
        done = record_epochs(conn, trial_id, metrics)
        if checkpoint is not None:
            new_id = save_checkpoint(conn, checkpoint, epoch=done, sha256=sha256)
            old = conn.execute(
                "SELECT checkpoint_id FROM trials WHERE id = ?", (trial_id,)
            ).fetchone()[0]
            conn.execute("UPDATE trials SET checkpoint_id = ? WHERE id = ?", (new_id, trial_id))
            if old is not None:
                delete_checkpoint_if_unused(conn, old)
        if state is not None:
            set_trial_state(conn, trial_id, state, error=error)
    return done


def trial_checkpoint(conn: sqlite3.Connection, trial_id: int) -> bytes | None:
    """The trial's latest checkpoint bytes (sha256-verified), or None before its first segment."""
    row = conn.execute("SELECT checkpoint_id FROM trials WHERE id = ?", (trial_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no trial with id={trial_id}")
    return None if row[0] is None else load_checkpoint(conn, row[0])


def trial_metrics(conn: sqlite3.Connection, trial_id: int) -> list[dict]:
    """The trial's epochs in order, each ``{"epoch", "train_loss", ..., "seconds"}``."""
    rows = conn.execute(
        "SELECT epoch, train_loss, train_acc, val_loss, val_acc, learning_rate, seconds"
        " FROM metrics WHERE trial_id = ? ORDER BY epoch",
        (trial_id,),
    )
    return [dict(r) for r in rows]


def study_metrics(conn: sqlite3.Connection, study_id: int) -> dict[str, list]:
    """Every epoch of every trial of the study as columns (``METRIC_COLUMNS``), ordered by
    trial number then epoch; ready for ``pandas.DataFrame(...)``."""
    rows = conn.execute(
        "SELECT m.trial_id, t.number, m.epoch, m.train_loss, m.train_acc, m.val_loss,"
        " m.val_acc, m.learning_rate, m.seconds FROM trials t JOIN metrics m"
        " ON m.trial_id = t.id WHERE t.study_id = ? ORDER BY t.number, m.epoch",
        (study_id,),
    ).fetchall()
    columns = list(zip(*rows)) if rows else [()] * len(METRIC_COLUMNS)
    return {name: list(col) for name, col in zip(METRIC_COLUMNS, columns)}


def study_trials_and_metrics(
    conn: sqlite3.Connection, study_id: int
) -> tuple[list[dict], dict[int, list[dict]]]:
    """Every trial of the study (as ``list_trials``) and every trial id's epochs (as
    ``trial_metrics``), in two queries: what a study's history is built from."""
    trials = list_trials(conn, study_id)
    metrics: dict[int, list[dict]] = {t["id"]: [] for t in trials}
    for r in conn.execute(
        "SELECT m.trial_id, m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc,"
        " m.learning_rate, m.seconds FROM metrics m JOIN trials t ON t.id = m.trial_id"
        " WHERE t.study_id = ? ORDER BY m.trial_id, m.epoch", (study_id,),
    ):
        row = dict(r)
        metrics[row.pop("trial_id")].append(row)
    return trials, metrics
