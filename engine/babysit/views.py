"""Read-only views of a session for the dashboard and the CLI (any process, any time).

Everything here only reads SQLite, so a page can poll it while the runner writes.
"""

from __future__ import annotations

import sqlite3

from engine.babysit.commands import pace as session_pace
from engine.babysit.live import build_session_dataset, load_state_at
from engine.babysit.policy import best_node
from engine.babysit.replay import rebuildable
from engine.data import Dataset
from engine.diagnosis import diagnose
from engine.nn import TrainState
from engine.storage import runners
from engine.storage import sessions as store

KIND = "session"


def session_view(conn: sqlite3.Connection, session_id: int) -> dict:
    """Status, head, config, runner and rollback targets of a session (see docs/CONTRACTS.md)."""
    session = store.get_session(conn, session_id)
    nodes = store.session_nodes(conn, session_id)
    head = next(n for n in nodes if n["id"] == session["head_node_id"])
    path = store.lineage(conn, head["id"])
    on_path = {n["id"] for n in path}
    branches = store.session_branches(conn, session_id)
    abandoned = {b["branch"]: b["abandoned"] for b in branches}
    runner = runners.runner_info(conn, KIND, session_id)
    alive = bool(runner and runner["alive"])
    pending = len(runners.pending_intents(conn, KIND, session_id))
    best = best_node(nodes)
    rebuilt = rebuildable(conn, session, nodes)  # an adopted trial's epochs, by replay
    keys = ("id", "name", "status", "message", "model", "dataset", "seed", "config", "auto",
            "retention", "n_params", "source_trial_id", "head_node_id", "branch",
            "remaining_epochs", "created_at", "updated_at")
    view = {key: session[key] for key in keys}
    view.update(
        head_epoch=head["epoch"],
        pace=session_pace(conn, session_id),
        runner=runner,
        runner_alive=alive,
        pending_commands=pending,
        needs_runner=not alive and (pending > 0 or session["status"] == "running"),
        rollback_targets=[
            {
                "node_id": n["id"], "branch": n["branch"], "epoch": n["epoch"],
                "val_loss": n["val_loss"], "abandoned": abandoned.get(n["branch"], False),
                "on_lineage": n["id"] in on_path, "rebuild": n["id"] in rebuilt,
            }
            for n in nodes
            if (n["checkpoint_id"] is not None or n["id"] in rebuilt) and n["id"] != head["id"]
        ],
        best=None if best is None else {
            "node_id": best["id"], "epoch": best["epoch"], "branch": best["branch"],
            "val_loss": best["val_loss"],
        },
        branches=[
            {k: b[k] for k in ("branch", "parent_branch", "fork_node_id", "fork_epoch",
                               "abandoned")}
            for b in branches
        ],
        flags=diagnose(n for n in path if n["train_loss"] is not None),
    )
    return view


def session_curves(conn: sqlite3.Connection, session_id: int) -> list[dict]:
    """Per-branch per-epoch metrics: ``[{branch, parent_branch, fork_epoch, abandoned, current,
    points: [{node_id, epoch, train_loss, ..., has_checkpoint, health}]}]`` (``health``: the
    epoch's stored health dict, or None)."""
    session = store.get_session(conn, session_id)
    nodes = store.session_nodes(conn, session_id)
    out = []
    for b in store.session_branches(conn, session_id):
        points = [
            {
                "node_id": n["id"], "epoch": n["epoch"],
                **{f: n[f] for f in store.METRIC_FIELDS},
                "has_checkpoint": n["checkpoint_id"] is not None,
                "health": n["health"],
            }
            for n in nodes
            if n["branch"] == b["branch"]
        ]
        out.append({
            "branch": b["branch"], "parent_branch": b["parent_branch"],
            "fork_node_id": b["fork_node_id"], "fork_epoch": b["fork_epoch"],
            "abandoned": b["abandoned"], "current": b["branch"] == session["branch"],
            "points": points,
        })
    return out


def session_events(conn: sqlite3.Connection, session_id: int, *, since_id: int = 0) -> list[dict]:
    """The session's timeline: ``{id, at, kind, actor, branch, epoch, payload}`` in order."""
    store.get_session(conn, session_id)
    return store.session_events(conn, session_id, since_id=since_id)


def list_sessions(conn: sqlite3.Connection) -> list[dict]:
    """Every session, newest first: ``id, name, status, head_epoch, branch, runner_alive,
    source_trial_id, updated_at``."""
    out = []
    for s in store.list_session_rows(conn):
        head = store.get_node(conn, s["head_node_id"]) if s["head_node_id"] else None
        out.append({
            "id": s["id"], "name": s["name"], "status": s["status"],
            "head_epoch": head["epoch"] if head else None, "branch": s["branch"],
            "runner_alive": runners.runner_alive(conn, KIND, s["id"]),
            "source_trial_id": s["source_trial_id"], "updated_at": s["updated_at"],
        })
    return out


def load_head_state(conn: sqlite3.Connection, session_id: int) -> TrainState:
    """The TrainState at the session's head (for the model inspector, decision boundaries)."""
    return load_state_at(conn, store.get_session(conn, session_id)["head_node_id"])


def session_dataset(conn: sqlite3.Connection, session_id: int) -> Dataset:
    """The session's dataset, rebuilt from its spec."""
    return build_session_dataset(conn, store.get_session(conn, session_id)["dataset"])
