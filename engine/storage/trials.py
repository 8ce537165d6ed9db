"""A study's trials and their per-epoch metrics in SQLite (``engine.storage.studies`` re-exports
every name, the facade the runner and the UI use).

The runner writes a trial's row when it asks its sampler for it (``add_trials``), moves it
through ``running`` (and ``paused``) to a terminal state, and appends one metrics row per epoch
together with the trial's latest checkpoint in one short transaction per segment
(``record_segment``), so a checkpoint and the curve it ends are never out of step. Nothing
non-finite is ever stored.

An epoch's network health (``"health"`` in its metrics) is stored beside it, cleaned and
bounded by ``engine.storage.health``; with every recorded segment the trial's row gets its last
measured health and the flags ``engine.diagnosis.diagnose`` raises over all its epochs, so the
pages read both with the trial and never diagnose a study's curves themselves.
"""

from __future__ import annotations

import json
import math
import sqlite3

from engine.diagnosis import diagnose
from engine.storage.blobs import (
    NotFoundError,
    atomic,
    delete_checkpoint_if_unused,
    load_checkpoint,
    save_checkpoint,
)
from engine.storage.db import now
from engine.storage.health import dump_health, load_health

TRIAL_STATES = ("waiting", "running", "paused", "complete", "pruned", "diverged", "failed",
                "stopped", "cancelled")
TERMINAL_STATES = ("complete", "pruned", "diverged", "failed", "cancelled")  # cancelled: by hand
PENDING_STATES = ("waiting", "running", "paused", "stopped")  # asked, not finished
METRIC_FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "learning_rate", "seconds")
METRIC_COLUMNS = ("trial_id", "number", "epoch", *METRIC_FIELDS)


def _check(value: str, valid: tuple[str, ...], field: str) -> None:
    if value not in valid:
        raise ValueError(f"{field} must be one of {valid}, got {field}={value!r}")


def add_trials(conn: sqlite3.Connection, study_id: int, trials: list[dict]) -> list[int]:
    """Append ``waiting`` trials, each ``{"params": dict, "unit": list[float],
    "target_epochs": int}`` (optional ``"origin"``: ``"sampler"``, the default, ``"user"`` or
    ``"session"``; optional ``"name"``, ``"notes"``, ``"source"``: a JSON-able dict saying where a
    trial made by hand came from), numbered on from the study's last trial; return their ids."""
    at = now()
    ids = []
    with atomic(conn):
        start = conn.execute(
            "SELECT COALESCE(MAX(number), -1) + 1 FROM trials WHERE study_id = ?", (study_id,)
        ).fetchone()[0]
        for i, trial in enumerate(trials):
            cursor = conn.execute(
                "INSERT INTO trials (study_id, number, params_json, unit_json, target_epochs,"
                " origin, name, notes, source_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    study_id, start + i, json.dumps(trial["params"]),
                    json.dumps([float(u) for u in trial["unit"]]),
                    int(trial["target_epochs"]), trial.get("origin", "sampler"),
                    trial.get("name", ""), trial.get("notes", ""),
                    None if trial.get("source") is None else json.dumps(trial["source"]), at, at,
                ),
            )
            ids.append(int(cursor.lastrowid))
    return ids


_TRIAL_KEYS = (
    "id", "study_id", "number", "state", "attempts", "error", "epochs_done", "target_epochs",
    "best_val_acc", "best_val_loss", "last_val_acc", "last_val_loss", "seconds",
    "checkpoint_id", "origin", "name", "notes", "created_at", "updated_at",
)


def _trial_dict(row: sqlite3.Row) -> dict:
    trial = {key: row[key] for key in _TRIAL_KEYS}
    trial["params"] = json.loads(row["params_json"])
    trial["unit"] = json.loads(row["unit_json"])
    trial["health"] = load_health(row["health_json"])
    trial["flags"] = json.loads(row["flags_json"]) if row["flags_json"] else []
    trial["source"] = json.loads(row["source_json"]) if row["source_json"] else None
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
    return (trial_id, int(m["epoch"]), *values, dump_health(m.get("health")))


_SELECT_EPOCHS = (
    "SELECT epoch, train_loss, train_acc, val_loss, val_acc, learning_rate, seconds, health_json"
    " FROM metrics WHERE trial_id = ? ORDER BY epoch"
)


def _epoch_dict(row: sqlite3.Row) -> dict:
    out = {key: row[key] for key in ("epoch", *METRIC_FIELDS)}
    if row["health_json"] is not None:
        out["health"] = load_health(row["health_json"])
    return out


def _refresh_diagnosis(conn: sqlite3.Connection, trial_id: int) -> None:
    """The trial's last measured health and its flags, from every stored epoch."""
    epochs = [_epoch_dict(r) for r in conn.execute(_SELECT_EPOCHS, (trial_id,))]
    last = next((e["health"] for e in reversed(epochs) if "health" in e), None)
    conn.execute(
        "UPDATE trials SET health_json = ?, flags_json = ? WHERE id = ?",
        (dump_health(last), json.dumps(diagnose(epochs)), trial_id),
    )


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
        conn.executemany(
            "INSERT INTO metrics (trial_id, epoch, train_loss, train_acc, val_loss, val_acc,"
            " learning_rate, seconds, health_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
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
        _refresh_diagnosis(conn, trial_id)
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
    """The trial's epochs in order, each ``{"epoch", "train_loss", ..., "seconds"}`` and, for
    an epoch whose health was measured, ``"health"`` (the stored dict)."""
    return [_epoch_dict(r) for r in conn.execute(_SELECT_EPOCHS, (trial_id,))]


def study_metrics(
    conn: sqlite3.Connection, study_id: int, *, health: bool = False
) -> dict[str, list]:
    """Every epoch of every trial of the study as columns (``METRIC_COLUMNS``), ordered by
    trial number then epoch; ready for ``pandas.DataFrame(...)``. ``health=True`` adds a
    column ``"health"`` (each epoch's stored health dict, or None)."""
    names = METRIC_COLUMNS + (("health",) if health else ())
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: 50,000 sqlite3.Row objects cost ~3x the time
    rows = cursor.execute(
        "SELECT m.trial_id, t.number, m.epoch, m.train_loss, m.train_acc, m.val_loss,"
        " m.val_acc, m.learning_rate, m.seconds"
        + (", m.health_json" if health else "")
        + " FROM trials t JOIN metrics m"
        " ON m.trial_id = t.id WHERE t.study_id = ? ORDER BY t.number, m.epoch",
        (study_id,),
    ).fetchall()
    columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in names]
    out = dict(zip(names, columns))
    if health:
        out["health"] = [load_health(text) for text in out["health"]]
    return out


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
