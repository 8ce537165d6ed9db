"""A session's commands: validate them, apply them, and train one epoch at a time.

``validate`` checks a command against the session as it is (the UI calls it through ``send`` so
a person sees a bad value at once); ``apply`` records a command's effect and its event in one
transaction; ``step_epoch`` trains exactly one epoch of a ``running`` session with
``engine.nn.train_segment(..., n_epochs=1)`` and commits the node, its checkpoint, the new head
and the remaining-epoch count in one transaction (so a runner killed mid-epoch loses nothing
and repeats nothing), then lets the automatic babysitter act. ``execute`` is ``apply`` plus, for
``run``, training in this process until the run ends: the runner, the CLI and tests use it.

Only one process writes a session at a time: its runner (``engine.babysit.runner``), or a
foreground CLI that holds the runner slot.
"""

from __future__ import annotations

import difflib
import math
import sqlite3
from collections.abc import Callable
from dataclasses import fields

from engine.babysit import store
from engine.babysit.policy import auto_trigger, best_node, check_auto, retained_nodes
from engine.data import Dataset, DatasetSpec, build_dataset
from engine.nn import (
    ModelSpec,
    TrainConfig,
    TrainState,
    state_from_bytes,
    state_to_bytes,
    train_segment,
)
from engine.storage import blobs
from engine.storage.db import transaction

COMMANDS = ("run", "pause", "set", "rollback", "auto")
CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig))
ARCHITECTURE_FIELDS = tuple(f.name for f in fields(ModelSpec)) + ("hidden_layers", "hidden_units")


# --- loading state and data --------------------------------------------------------------------


def load_state_at(conn: sqlite3.Connection, node_id: int) -> TrainState:
    """The TrainState stored at a node; ``store.CheckpointPruned`` if its blob was pruned."""
    node = store.get_node(conn, node_id)
    if node["checkpoint_id"] is None:
        raise store.CheckpointPruned(
            f"the checkpoint of epoch {node['epoch']} (branch {node['branch']}, node {node_id}) "
            "is not kept (retention budget, or an adopted trial's earlier epoch); see "
            "session_view(...)['rollback_targets'] for the epochs that can be loaded"
        )
    state = state_from_bytes(store.read_checkpoint(conn, node["checkpoint_id"]))
    # TEMPORARY: engine.nn.state_to_bytes writes the 0-d "step" as shape (1,)
    # (np.ascontiguousarray); remove once engine.nn round-trips it.
    state.opt_state["step"] = state.opt_state["step"].reshape(())
    return state


def build_session_dataset(conn: sqlite3.Connection, dataset: dict) -> Dataset:
    """Rebuild a session's dataset from its spec dict (an uploaded CSV is read from storage)."""
    spec = DatasetSpec.from_dict(dataset)
    csv_text = blobs.get_upload(conn, spec.csv_sha256) if spec.kind == "csv" else None
    return build_dataset(spec, csv_text)


class Live:
    """What a runner keeps in memory between epochs: the dataset and the head's TrainState."""

    def __init__(self) -> None:
        self.dataset: Dataset | None = None
        self.dataset_key: str | None = None
        self.state: TrainState | None = None
        self.node_id: int | None = None

    def head_state(self, conn: sqlite3.Connection, session: dict) -> TrainState:
        if self.state is None or self.node_id != session["head_node_id"]:
            self.state = load_state_at(conn, session["head_node_id"])
            self.node_id = session["head_node_id"]
        return self.state

    def data(self, conn: sqlite3.Connection, session: dict) -> Dataset:
        key = repr(sorted(session["dataset"].items()))
        if self.dataset is None or key != self.dataset_key:
            self.dataset = build_session_dataset(conn, session["dataset"])
            self.dataset_key = key
        return self.dataset


# --- validation ----------------------------------------------------------------------------------


def _only(command: str, payload: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ValueError(
            f"{command}: unknown field(s) {', '.join(map(repr, unknown))}; valid: {valid}"
        )


def _check_set(session: dict, payload: dict) -> dict:
    if not payload:
        raise ValueError(f"set: give at least one hyperparameter: {', '.join(CONFIG_FIELDS)}")
    for key in payload:
        if key in ARCHITECTURE_FIELDS:
            raise ValueError(
                f"set: cannot change {key!r}: the architecture of a babysitting session is fixed "
                f"(hidden={tuple(session['model']['hidden'])}, activation="
                f"{session['model']['activation']!r}, batch_norm={session['model']['batch_norm']})"
                "; start a new session for another architecture. Changeable: "
                + ", ".join(CONFIG_FIELDS)
            )
        if key not in CONFIG_FIELDS:
            close = difflib.get_close_matches(str(key), CONFIG_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"set: unknown hyperparameter {key!r}{hint}; changeable: {', '.join(CONFIG_FIELDS)}"
            )
    try:
        config = TrainConfig.from_dict({**session["config"], **payload}).to_dict()
    except ValueError as err:
        raise ValueError(f"set: {err}") from None
    return {key: config[key] for key in payload}


def _check_rollback(conn: sqlite3.Connection, session: dict, payload: dict) -> dict:
    restore = payload.get("restore_config", False)
    if not isinstance(restore, bool):
        raise ValueError(f"rollback: restore_config must be true or false, got {restore!r}")
    if ("node_id" in payload) == ("epoch" in payload):
        raise ValueError("rollback: give exactly one of node_id or epoch")
    path = store.lineage(conn, session["head_node_id"])
    if "epoch" in payload:
        epoch = payload["epoch"]
        matches = [n for n in path if n["epoch"] == epoch and not isinstance(epoch, bool)]
        if not matches:
            raise ValueError(
                f"rollback: epoch={epoch!r} is not on the current branch's lineage "
                f"(epochs {path[0]['epoch']}..{path[-1]['epoch']})"
            )
        node = matches[0]
    else:
        node_id = payload["node_id"]
        try:
            node = store.get_node(conn, int(node_id))
        except (store.SessionNotFound, TypeError, ValueError):
            node = None
        if node is None or node["session_id"] != session["id"]:
            raise ValueError(f"rollback: node_id={node_id!r} is not a node of session "
                             f"{session['id']}")
    if node["id"] == session["head_node_id"]:
        raise ValueError(f"rollback: epoch {node['epoch']} is already the head; nothing to undo")
    if node["checkpoint_id"] is None:
        kept = [n["epoch"] for n in path if n["checkpoint_id"] is not None]
        raise ValueError(
            f"rollback: the checkpoint of epoch {node['epoch']} (node {node['id']}) is not kept; "
            f"epochs with a checkpoint on this lineage: {kept}"
        )
    return {"node_id": node["id"], "restore_config": restore}


def validate(
    conn: sqlite3.Connection, session_id: int, command: str, payload: dict | None = None
) -> dict:
    """Check a command against the session now; return its normalised payload or raise
    ValueError (SessionNotFound for a bad id) with a message naming the field and value."""
    payload = dict(payload or {})
    session = store.get_session(conn, session_id)
    if command == "run":
        _only(command, payload, ("epochs",))
        epochs = payload.get("epochs")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                                   or epochs < 1):
            raise ValueError(f"run: epochs must be an integer >= 1 or None, got {epochs!r}")
        return {"epochs": epochs}
    if command == "pause":
        _only(command, payload, ())
        return {}
    if command == "set":
        return _check_set(session, payload)
    if command == "rollback":
        _only(command, payload, ("node_id", "epoch", "restore_config"))
        return _check_rollback(conn, session, payload)
    if command == "auto":
        if not payload:
            raise ValueError("auto: give enabled, patience and/or factor")
        return check_auto(payload)
    raise ValueError(f"unknown command {command!r}; valid: {', '.join(COMMANDS)}")


# --- applying -----------------------------------------------------------------------------------


def _event(conn, session: dict, kind: str, actor: str, payload: dict) -> None:
    head = store.get_node(conn, session["head_node_id"])
    store.add_event(
        conn, session["id"], kind, actor=actor, branch=session["branch"], epoch=head["epoch"],
        payload=payload,
    )


def _rollback(conn, session: dict, node_id: int, *, actor: str, restore: bool, reason: str):
    head = store.get_node(conn, session["head_node_id"])
    target = store.get_node(conn, node_id)
    new_branch = 1 + conn.execute(
        "SELECT MAX(branch) FROM session_branches WHERE session_id = ?", (session["id"],)
    ).fetchone()[0]
    store.insert_branch(conn, session["id"], new_branch, target["branch"], node_id)
    store.mark_abandoned(conn, session["id"], session["branch"])
    payload = {
        "from_node": head["id"], "from_epoch": head["epoch"], "from_branch": session["branch"],
        "to_node": node_id, "to_epoch": target["epoch"], "to_branch": target["branch"],
        "new_branch": new_branch, "restore_config": restore,
    }
    if reason:
        payload["reason"] = reason
    values = {"head_node_id": node_id, "branch": new_branch}
    if restore:
        values["config"] = target["config"]
    store.update_session(conn, session["id"], **values)
    store.add_event(conn, session["id"], "rollback", actor=actor, branch=new_branch,
                    epoch=target["epoch"], payload=payload)


def _set(conn, session: dict, changes: dict, *, actor: str, reason: str = "") -> None:
    old = session["config"]
    payload = {"changes": {k: [old[k], v] for k, v in changes.items() if old[k] != v}}
    if reason:
        payload["reason"] = reason
    store.update_session(conn, session["id"], config={**old, **changes})
    _event(conn, session, "set", actor, payload)


def _finish(conn, session: dict, status: str, reason: str, message: str = "") -> None:
    store.update_session(conn, session["id"], status=status, remaining_epochs=0, message=message)
    _event(conn, session, "done", "auto", {"reason": reason})


def record_rejected(
    conn: sqlite3.Connection, session_id: int, command: str, payload: dict, message: str
) -> None:
    """Record a queued command that could not be applied (event ``rejected``)."""
    with transaction(conn):
        session = store.get_session(conn, session_id)
        _event(conn, session, "rejected", "user",
               {"command": command, "payload": payload, "message": message})


def finish_interrupted(
    conn: sqlite3.Connection, session_id: int, status: str, message: str
) -> None:
    """End a run that was cut short (Ctrl-C: ``paused``; an error: ``failed``), with an event."""
    with transaction(conn):
        session = store.get_session(conn, session_id)
        if status == "failed":
            _event(conn, session, "failed", "auto", {"message": message})
            store.update_session(conn, session_id, status="failed", remaining_epochs=0,
                                 message=message)
        elif session["status"] == "running":
            _finish(conn, session, status, "interrupted", message)


def apply(
    conn: sqlite3.Connection,
    session_id: int,
    command: str,
    payload: dict | None = None,
    *,
    actor: str = "user",
) -> dict:
    """Validate and record one command and its event in one transaction; return the payload
    as recorded. ``run`` only marks the session running; training is ``step_epoch``'s."""
    with transaction(conn):
        clean = validate(conn, session_id, command, payload)
        session = store.get_session(conn, session_id)
        if command == "run":
            store.update_session(conn, session_id, status="running",
                                 remaining_epochs=clean["epochs"], message="")
            _event(conn, session, "run", actor, clean)
        elif command == "pause":
            _event(conn, session, "pause", actor, {})
            if session["status"] == "running":
                _finish(conn, session, "paused", "paused")
        elif command == "set":
            _set(conn, session, clean, actor=actor)
        elif command == "rollback":
            _rollback(conn, session, clean["node_id"], actor=actor,
                      restore=clean["restore_config"], reason="")
            if session["status"] == "running":
                _finish(conn, store.get_session(conn, session_id), "paused", "rollback")
        elif command == "auto":
            auto = {**session["auto"], **clean}
            store.update_session(conn, session_id, auto=auto)
            _event(conn, session, "auto", actor, auto)
    return clean


# --- training -----------------------------------------------------------------------------------


def _prune(conn, session: dict) -> None:
    if session["n_params"] <= session["retention"]["max_params_keep_all"]:
        return
    nodes = store.session_nodes(conn, session["id"])
    forks = {b["fork_node_id"] for b in store.session_branches(conn, session["id"])}
    keep = retained_nodes(
        nodes, n_params=session["n_params"], retention=session["retention"],
        protected=forks | {session["head_node_id"]},
    )
    store.delete_checkpoints(
        conn, [n["id"] for n in nodes if n["checkpoint_id"] is not None and n["id"] not in keep]
    )


def _babysit(conn, session_id: int, *, diverged: bool) -> str | None:
    """Let the automatic babysitter look at the lineage and act; return its reason or None."""
    session = store.get_session(conn, session_id)
    if not session["auto"]["enabled"]:
        return None
    path = store.lineage(conn, session["head_node_id"])
    reason = auto_trigger(path, session["auto"], diverged=diverged)
    if reason is None:
        return None
    target = best_node(path)
    if target is not None and target["id"] != session["head_node_id"]:
        _rollback(conn, session, target["id"], actor="auto", restore=False, reason=reason)
        session = store.get_session(conn, session_id)
    lr = session["config"]["learning_rate"] * session["auto"]["factor"]
    _set(conn, session, {"learning_rate": lr}, actor="auto", reason=reason)
    return reason


def _finite_metrics(metrics: dict) -> bool:
    return all(
        isinstance(metrics.get(k), int | float) and math.isfinite(metrics[k])
        for k in store.METRIC_FIELDS
    )


def step_epoch(conn: sqlite3.Connection, session_id: int, live: Live) -> dict | None:
    """Train one epoch of a ``running`` session and commit it; None if it is not running.

    Returns an outcome dict: ``{"kind": "epoch" | "diverged", "epoch", "branch", "node_id",
    "metrics", "message", "auto", "status"}`` (``auto`` is the babysitter's reason or None).
    """
    session = store.get_session(conn, session_id)
    if session["status"] != "running":
        return None
    remaining = session["remaining_epochs"]
    if remaining is not None and remaining <= 0:
        with transaction(conn):
            _finish(conn, session, "idle", "finished")
        return None
    state = live.head_state(conn, session)
    result = train_segment(
        state, TrainConfig.from_dict(session["config"]), live.data(conn, session), 1
    )
    metrics = result.metrics[0] if result.metrics else None
    ok = result.status == "ok" and metrics is not None and _finite_metrics(metrics)
    remaining = None if remaining is None else remaining - 1
    outcome = {"branch": session["branch"], "metrics": metrics if ok else None}
    with transaction(conn):
        if ok:
            checkpoint_id = blobs.save_checkpoint(
                conn, state_to_bytes(result.state), epoch=result.state.epoch
            )
            node_id = store.insert_node(
                conn, session_id=session_id, parent_id=session["head_node_id"],
                branch=session["branch"], epoch=result.state.epoch,
                checkpoint_id=checkpoint_id, config=session["config"], metrics=metrics,
            )
            store.update_session(conn, session_id, head_node_id=node_id,
                                 remaining_epochs=remaining)
            _prune(conn, store.get_session(conn, session_id))
            outcome.update(kind="epoch", epoch=result.state.epoch, node_id=node_id, message="")
            outcome["auto"] = _babysit(conn, session_id, diverged=False)
        else:
            epoch = state.epoch + 1
            message = result.message or f"non-finite metrics at epoch {epoch}: {metrics}"
            _event(conn, session, "diverged", "auto", {
                "message": message, "epoch": epoch,
                "learning_rate": session["config"]["learning_rate"],
            })
            store.update_session(conn, session_id, remaining_epochs=remaining)
            outcome.update(kind="diverged", epoch=epoch, node_id=None, message=message)
            outcome["auto"] = _babysit(conn, session_id, diverged=True)
            if outcome["auto"] is None:
                _finish(conn, store.get_session(conn, session_id), "diverged", "diverged",
                        message)
        session = store.get_session(conn, session_id)
        if session["status"] == "running" and remaining == 0:
            _finish(conn, session, "idle", "finished")
        outcome["status"] = store.get_session(conn, session_id)["status"]
    if ok:  # the in-memory state is the committed head's (unless the babysitter moved it)
        live.state, live.node_id = result.state, outcome["node_id"]
    return outcome


def execute(
    conn: sqlite3.Connection,
    session_id: int,
    command: str,
    payload: dict | None = None,
    *,
    actor: str = "user",
    between_epochs: Callable[[sqlite3.Connection, int], None] | None = None,
    on_outcome: Callable[[dict], None] | None = None,
    live: Live | None = None,
) -> dict:
    """Apply a command now, in this process; ``run`` trains here until the run ends (done,
    paused from ``between_epochs``, or diverged). Returns ``{"command", "payload", "status",
    "outcomes"}`` (one outcome per epoch tried, see ``step_epoch``)."""
    clean = apply(conn, session_id, command, payload, actor=actor)
    outcomes: list[dict] = []
    if command == "run":
        live = live or Live()
        while (outcome := step_epoch(conn, session_id, live)) is not None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if between_epochs is not None:
                between_epochs(conn, session_id)
    status = store.get_session(conn, session_id)["status"]
    return {"command": command, "payload": clean, "status": status, "outcomes": outcomes}
