"""Actions on a study in SQLite: the queue of what people asked for, and the edits they make.

An action (add a trial, extend the budget, change the space, stop a trial, a note, ...) is a row
of ``study_actions``, queued by the dashboard or the CLI and applied by the study's runner (or
by the caller when no runner is alive) in one transaction that also sets its ``applied_at``:
``engine.study.actions`` says what each kind does. The writes below join the caller's
transaction (``atomic``).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from engine.storage.blobs import NotFoundError
from engine.storage.db import atomic, now

STUDY_FIELDS = ("name", "notes", "archived", "rank_json", "n_trials", "epoch_budget",
                "space_json", "status")
TRIAL_FIELDS = ("name", "notes", "state", "target_epochs", "unit_json")


def queue_action(conn: sqlite3.Connection, study_id: int, kind: str, payload: dict) -> int:
    """Queue an action for the study; its id."""
    with atomic(conn):
        cursor = conn.execute(
            "INSERT INTO study_actions (study_id, kind, payload_json, created_at)"
            " VALUES (?, ?, ?, ?)", (study_id, kind, json.dumps(payload), now()),
        )
    return int(cursor.lastrowid)


def _action(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"], "study_id": row["study_id"], "kind": row["kind"],
        "payload": json.loads(row["payload_json"]), "created_at": row["created_at"],
        "applied_at": row["applied_at"],
        "result": json.loads(row["result_json"]) if row["result_json"] else None,
        "error": row["error"],
    }


def next_pending_action(conn: sqlite3.Connection, study_id: int) -> dict | None:
    """The oldest action not applied yet, or None."""
    row = conn.execute(
        "SELECT * FROM study_actions WHERE study_id = ? AND applied_at IS NULL ORDER BY id"
        " LIMIT 1", (study_id,),
    ).fetchone()
    return None if row is None else _action(row)


def has_pending_actions(conn: sqlite3.Connection, study_id: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM study_actions WHERE study_id = ? AND applied_at IS NULL LIMIT 1",
        (study_id,),
    ).fetchone() is not None


def mark_applied(conn: sqlite3.Connection, action_id: int, *, result: dict | None = None,
                 error: str = "") -> None:
    """The action is done (``error``: it was refused when applied, and why)."""
    with atomic(conn):
        conn.execute(
            "UPDATE study_actions SET applied_at = ?, result_json = ?, error = ? WHERE id = ?",
            (now(), None if result is None else json.dumps(result), error, action_id),
        )


def get_action(conn: sqlite3.Connection, action_id: int) -> dict:
    row = conn.execute("SELECT * FROM study_actions WHERE id = ?", (action_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no study action with id={action_id}")
    return _action(row)


def list_actions(conn: sqlite3.Connection, study_id: int) -> list[dict]:
    """The study's actions, oldest first."""
    return [_action(r) for r in conn.execute(
        "SELECT * FROM study_actions WHERE study_id = ? ORDER BY id", (study_id,))]


def _update(conn: sqlite3.Connection, table: str, allowed: tuple[str, ...], row_id: int,
            values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"cannot set {unknown} on {table}; settable: {allowed}")
    if not values:
        return
    names = list(values)
    with atomic(conn):
        cursor = conn.execute(
            f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)}, updated_at = ?"
            " WHERE id = ?", [*(values[n] for n in names), now(), row_id],
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"no {table[:-1]} with id={row_id}")


def update_study(conn: sqlite3.Connection, study_id: int, **values: Any) -> None:
    """Set columns of a study (``STUDY_FIELDS``; JSON columns take their text)."""
    _update(conn, "studies", STUDY_FIELDS, study_id, values)


def update_trial(conn: sqlite3.Connection, trial_id: int, **values: Any) -> None:
    """Set columns of a trial (``TRIAL_FIELDS``)."""
    _update(conn, "trials", TRIAL_FIELDS, trial_id, values)


def set_units(conn: sqlite3.Connection, units: dict[int, list[float]]) -> None:
    """Each trial id's unit-cube point (after the study's space changed)."""
    with atomic(conn):
        conn.executemany("UPDATE trials SET unit_json = ? WHERE id = ?",
                         [(json.dumps(u), trial_id) for trial_id, u in units.items()])


def trials_from_session(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """Trials a babysitting session was returned to its study as: ``{"trial_id", "study_id",
    "number", "created_at"}``, oldest first."""
    rows = conn.execute(
        "SELECT id, study_id, number, created_at FROM trials WHERE source_json IS NOT NULL"
        " AND json_extract(source_json, '$.kind') = 'session'"
        " AND json_extract(source_json, '$.session_id') = ? ORDER BY id", (session_id,),
    ).fetchall()
    return [{"trial_id": r["id"], "study_id": r["study_id"], "number": r["number"],
             "created_at": r["created_at"]} for r in rows]


def forget_study(conn: sqlite3.Connection, study_id: int) -> None:
    """What ``delete_study`` removes besides the study's own rows: its actions, and the
    sessions' links to its trials (the sessions stay)."""
    with atomic(conn):
        conn.execute("DELETE FROM study_actions WHERE study_id = ?", (study_id,))
        conn.execute(
            "UPDATE sessions SET source_trial_id = NULL WHERE source_trial_id IN"
            " (SELECT id FROM trials WHERE study_id = ?)", (study_id,),
        )


def trial_id_by_number(conn: sqlite3.Connection, study_id: int, number: int) -> int | None:
    """The id of the study's trial ``number``, or None."""
    row = conn.execute("SELECT id FROM trials WHERE study_id = ? AND number = ?",
                       (study_id, number)).fetchone()
    return None if row is None else int(row[0])


def trial_count(conn: sqlite3.Connection, study_id: int) -> int:
    """How many trials the study has asked (its trial numbers are ``0..count - 1``)."""
    return int(conn.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?",
                            (study_id,)).fetchone()[0])


def study_budget(conn: sqlite3.Connection, study_id: int) -> tuple[int | None, int | None]:
    """``(n_trials, epoch_budget)`` as stored now (an action may have changed them)."""
    row = conn.execute("SELECT n_trials, epoch_budget FROM studies WHERE id = ?",
                       (study_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"study {study_id} does not exist")
    return row[0], row[1]
