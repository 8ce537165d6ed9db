"""Rows of a babysitting session: the session, its nodes, branches, events and checkpoint blobs.

Plain functions over the ``sessions``, ``session_nodes``, ``session_branches``,
``session_events`` and ``checkpoints`` tables. Writers expect to be called inside
``engine.storage.db.transaction`` (callers group an epoch's rows into one transaction); readers
work on any connection. Rows come back as plain dicts with their JSON columns decoded.

Checkpoint blobs go through ``engine.storage.blobs`` (sha256-verified on every read).

A *node* is one epoch of one branch (the root is epoch 0, or an adopted trial's epochs) with its
metrics, the config that trained it and, unless the retention budget pruned it, its checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from engine.storage import blobs
from engine.storage.db import now
from engine.storage.health import dump_health, load_health

METRIC_FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "learning_rate", "seconds")
DEFAULT_AUTO = {
    "enabled": False, "patience": 3, "factor": 0.5,
    "min_learning_rate": 1e-6, "max_rollbacks": 5, "tolerance": 0.05, "on_flags": True,
}
DEFAULT_RETENTION = {"max_params_keep_all": 10_000, "keep_last": 20, "keep_every": 5}
_JSON_COLUMNS = {
    "model": "model_json",
    "dataset": "dataset_json",
    "config": "config_json",
    "auto": "auto_json",
    "retention": "retention_json",
}


class SessionNotFound(LookupError):
    """No session (or node) with that id."""


class CheckpointPruned(LookupError):
    """The node exists but its checkpoint blob was deleted by the retention budget."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- checkpoints -------------------------------------------------------------------------------


def read_checkpoint(conn: sqlite3.Connection, checkpoint_id: int) -> bytes:
    """The blob of checkpoint ``checkpoint_id``, checked against its stored sha256."""
    try:
        return blobs.load_checkpoint(conn, checkpoint_id)
    except blobs.NotFoundError as err:
        raise CheckpointPruned(str(err)) from err


def delete_checkpoints(conn: sqlite3.Connection, node_ids: list[int]) -> None:
    """Drop the blobs of these nodes (their metrics stay); they stop being rollback targets."""
    for node_id in node_ids:
        row = conn.execute(
            "SELECT checkpoint_id FROM session_nodes WHERE id = ?", (node_id,)
        ).fetchone()
        if row is None or row["checkpoint_id"] is None:
            continue
        conn.execute("UPDATE session_nodes SET checkpoint_id = NULL WHERE id = ?", (node_id,))
        blobs.delete_checkpoint_if_unused(conn, row["checkpoint_id"])


# --- sessions ----------------------------------------------------------------------------------


def create_session(
    conn: sqlite3.Connection,
    *,
    name: str,
    model: dict,
    dataset: dict,
    config: dict,
    seed: int,
    auto: dict,
    retention: dict,
    n_params: int,
    source_trial_id: int | None = None,
) -> int:
    """Insert a session row (no nodes yet, status ``idle``); return its id."""
    at = now()
    cursor = conn.execute(
        "INSERT INTO sessions (name, created_at, updated_at, model_json, dataset_json,"
        " config_json, seed, status, branch, auto_json, source_trial_id, remaining_epochs,"
        " n_params, retention_json) VALUES (?, ?, ?, ?, ?, ?, ?, 'idle', 0, ?, ?, 0, ?, ?)",
        (
            name, at, at, _dumps(model), _dumps(dataset), _dumps(config), int(seed),
            _dumps(auto), source_trial_id, int(n_params), _dumps(retention),
        ),
    )
    return int(cursor.lastrowid)


def _session(row: sqlite3.Row) -> dict:
    out = dict(row)
    for key, column in _JSON_COLUMNS.items():
        out[key] = json.loads(out.pop(column) or "{}")
    out["auto"] = {**DEFAULT_AUTO, **out["auto"]}
    out["retention"] = {**DEFAULT_RETENTION, **out["retention"]}
    return out


def get_session(conn: sqlite3.Connection, session_id: int) -> dict:
    """The session as a dict (JSON columns decoded as ``model``, ``dataset``, ``config``,
    ``auto``, ``retention``); SessionNotFound if there is none."""
    row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise SessionNotFound(f"no babysitting session with id={session_id}")
    return _session(row)


def list_session_rows(conn: sqlite3.Connection) -> list[dict]:
    """Every session, newest first."""
    rows = conn.execute("SELECT * FROM sessions ORDER BY id DESC").fetchall()
    return [_session(r) for r in rows]


def update_session(conn: sqlite3.Connection, session_id: int, **values: Any) -> None:
    """Set columns of a session (``config=...`` etc. are JSON-encoded); bumps ``updated_at``."""
    columns, args = ["updated_at = ?"], [now()]
    for key, value in values.items():
        if key in _JSON_COLUMNS:
            key, value = _JSON_COLUMNS[key], _dumps(value)
        columns.append(f"{key} = ?")
        args.append(value)
    conn.execute(f"UPDATE sessions SET {', '.join(columns)} WHERE id = ?", (*args, session_id))


# --- nodes and branches ------------------------------------------------------------------------


def insert_node(
    conn: sqlite3.Connection,
    *,
    session_id: int,
    parent_id: int | None,
    branch: int,
    epoch: int,
    checkpoint_id: int | None,
    config: dict,
    metrics: dict | None = None,
) -> int:
    """Insert one epoch's node; ``metrics`` holds the EpochMetrics fields (or None) and
    optionally ``"health"`` (stored cleaned, ``engine.storage.health``)."""
    metrics = metrics or {}
    cursor = conn.execute(
        "INSERT INTO session_nodes (session_id, parent_id, branch, epoch, checkpoint_id,"
        " config_json, train_loss, train_acc, val_loss, val_acc, learning_rate, seconds,"
        " created_at, health_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id, parent_id, int(branch), int(epoch), checkpoint_id, _dumps(config),
            *(metrics.get(f) for f in METRIC_FIELDS), now(), dump_health(metrics.get("health")),
        ),
    )
    return int(cursor.lastrowid)


def set_node_checkpoint(conn: sqlite3.Connection, node_id: int, checkpoint_id: int) -> None:
    """Give a node (one without a checkpoint) its checkpoint: an adopted trial's epoch rebuilt
    by replay (``engine.babysit.replay``)."""
    conn.execute("UPDATE session_nodes SET checkpoint_id = ? WHERE id = ?",
                 (checkpoint_id, node_id))


def _node(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["config"] = json.loads(out.pop("config_json"))
    out["health"] = load_health(out.pop("health_json"))
    return out


def get_node(conn: sqlite3.Connection, node_id: int) -> dict:
    """One node as a dict (``config`` decoded); SessionNotFound if there is none."""
    row = conn.execute("SELECT * FROM session_nodes WHERE id = ?", (node_id,)).fetchone()
    if row is None:
        raise SessionNotFound(f"no babysitting node with id={node_id}")
    return _node(row)


def session_nodes(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """Every node of the session, ordered by branch then epoch."""
    rows = conn.execute(
        "SELECT * FROM session_nodes WHERE session_id = ? ORDER BY branch, epoch, id",
        (session_id,),
    ).fetchall()
    return [_node(r) for r in rows]


def retention_nodes(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """What the retention budget looks at, for every node (cheap: no health, config as the
    stored JSON text): ``{id, parent_id, branch, epoch, checkpoint_id, val_loss, config}``."""
    rows = conn.execute(
        "SELECT id, parent_id, branch, epoch, checkpoint_id, val_loss, config_json AS config"
        " FROM session_nodes WHERE session_id = ? ORDER BY branch, epoch, id",
        (session_id,),
    ).fetchall()
    return [dict(r) for r in rows]


def lineage(conn: sqlite3.Connection, node_id: int) -> list[dict]:
    """The nodes from the root down to ``node_id`` (inclusive), in epoch order."""
    rows = conn.execute(
        "WITH RECURSIVE path(id, depth) AS (SELECT ?, 0 UNION ALL"
        " SELECT n.parent_id, path.depth + 1 FROM session_nodes n JOIN path ON n.id = path.id"
        " WHERE n.parent_id IS NOT NULL)"
        " SELECT n.* FROM path JOIN session_nodes n ON n.id = path.id ORDER BY path.depth DESC",
        (node_id,),
    ).fetchall()
    return [_node(r) for r in rows]


def next_branch(conn: sqlite3.Connection, session_id: int) -> int:
    """The number a new branch of the session gets (one more than the highest)."""
    row = conn.execute(
        "SELECT MAX(branch) FROM session_branches WHERE session_id = ?", (session_id,)
    ).fetchone()
    return 1 + (row[0] if row[0] is not None else -1)


def insert_branch(
    conn: sqlite3.Connection,
    session_id: int,
    branch: int,
    parent_branch: int | None,
    fork_node_id: int | None,
) -> None:
    conn.execute(
        "INSERT INTO session_branches (session_id, branch, parent_branch, fork_node_id,"
        " abandoned, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        (session_id, branch, parent_branch, fork_node_id, now()),
    )


def mark_abandoned(conn: sqlite3.Connection, session_id: int, branch: int) -> None:
    conn.execute(
        "UPDATE session_branches SET abandoned = 1 WHERE session_id = ? AND branch = ?",
        (session_id, branch),
    )


def session_branches(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """Every branch: ``branch, parent_branch, fork_node_id, fork_epoch, abandoned (bool)``."""
    rows = conn.execute(
        "SELECT b.branch, b.parent_branch, b.fork_node_id, n.epoch AS fork_epoch, b.abandoned,"
        " b.created_at FROM session_branches b LEFT JOIN session_nodes n ON n.id = b.fork_node_id"
        " WHERE b.session_id = ? ORDER BY b.branch",
        (session_id,),
    ).fetchall()
    return [{**dict(r), "abandoned": bool(r["abandoned"])} for r in rows]


# --- events ------------------------------------------------------------------------------------


def add_event(
    conn: sqlite3.Connection,
    session_id: int,
    kind: str,
    *,
    actor: str,
    branch: int,
    epoch: int,
    payload: dict | None = None,
) -> int:
    """Append an event to the session's timeline; return its id."""
    if actor not in ("user", "auto"):
        raise ValueError(f"event actor must be 'user' or 'auto', got actor={actor!r}")
    cursor = conn.execute(
        "INSERT INTO session_events (session_id, at, kind, actor, branch, epoch, payload_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (session_id, now(), kind, actor, int(branch), int(epoch), _dumps(payload or {})),
    )
    return int(cursor.lastrowid)


def session_events(conn: sqlite3.Connection, session_id: int, *, since_id: int = 0) -> list[dict]:
    """The timeline in order: ``{id, at, kind, actor, branch, epoch, payload}`` dicts."""
    rows = conn.execute(
        "SELECT id, at, kind, actor, branch, epoch, payload_json FROM session_events"
        " WHERE session_id = ? AND id > ? ORDER BY id",
        (session_id, since_id),
    ).fetchall()
    out = []
    for r in rows:
        event = dict(r)
        event["payload"] = json.loads(event.pop("payload_json"))
        out.append(event)
    return out


def first_event(conn: sqlite3.Connection, session_id: int, kind: str, *,
                last: bool = False) -> dict | None:
    """The session's first (``last=True``: latest) event of ``kind`` (``{id, at, kind, actor,
    branch, epoch, payload}``), or None."""
    order = "DESC" if last else "ASC"
    row = conn.execute(
        "SELECT id, at, kind, actor, branch, epoch, payload_json FROM session_events"
        f" WHERE session_id = ? AND kind = ? ORDER BY id {order} LIMIT 1", (session_id, kind),
    ).fetchone()
    if row is None:
        return None
    event = dict(row)
    event["payload"] = json.loads(event.pop("payload_json"))
    return event


def last_event(conn: sqlite3.Connection, session_id: int, kind: str) -> dict | None:
    """The session's latest event of ``kind``, or None (e.g. its watching pace)."""
    return first_event(conn, session_id, kind, last=True)


def auto_actions_in_run(conn: sqlite3.Connection, session_id: int) -> int:
    """How often the babysitter acted (its ``set`` events) since a person last asked for a run
    or changed the babysitter's settings (events ``run`` / ``auto`` by the user)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM session_events WHERE session_id = ? AND kind = 'set'"
        " AND actor = 'auto' AND id > COALESCE((SELECT MAX(id) FROM session_events"
        " WHERE session_id = ? AND actor = 'user' AND kind IN ('run', 'auto')), 0)",
        (session_id, session_id),
    ).fetchone()
    return int(row[0])
