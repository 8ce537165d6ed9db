"""Checking a command against a session before anything changes (``validate``; the module is
not named after it, so ``engine.babysit.validate`` is always the function).

``validate`` is called by ``send`` in the UI's process (so a person sees a bad value at once)
and again by ``apply`` in the runner (the session may have moved on meanwhile). Messages name
the command, the field, the value and what would be valid.
"""

from __future__ import annotations

import difflib
import sqlite3
from dataclasses import fields

from engine.babysit.policy import check_auto
from engine.babysit.replay import replay_plan
from engine.nn import ModelSpec, TrainConfig
from engine.nn.size import check_size
from engine.storage import sessions as store

COMMANDS = ("run", "pause", "set", "rollback", "auto", "pace")
MAX_PACE = 100.0  # epochs per second: faster than this is no pace a person can watch
CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig))
ARCHITECTURE_FIELDS = tuple(f.name for f in fields(ModelSpec)) + ("hidden_layers", "hidden_units")


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
        check_size(ModelSpec.from_dict(session["model"]), config["batch_size"],
                   config["optimizer"])
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
    if node["checkpoint_id"] is None and replay_plan(conn, session, node) is None:
        kept = [n["epoch"] for n in path if n["checkpoint_id"] is not None]
        raise ValueError(
            f"rollback: the checkpoint of epoch {node['epoch']} (node {node['id']}) is not kept; "
            f"epochs with a checkpoint on this lineage: {kept}"
        )
    return {"node_id": node["id"], "restore_config": restore}


def check_pace(value) -> float | None:
    """A watching pace in epochs per second: None (or 0) = off, as fast as training goes."""
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 < float(value) <= MAX_PACE:
        raise ValueError(f"pace: epochs_per_second must be a number in (0, {MAX_PACE:g}], or "
                         f"0 / None for no pace, got {value!r}")
    return float(value)


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
    if command == "pace":
        _only(command, payload, ("epochs_per_second",))
        return {"epochs_per_second": check_pace(payload.get("epochs_per_second"))}
    if command == "auto":
        if not payload:
            raise ValueError("auto: give enabled, patience and/or factor")
        return check_auto(payload)
    raise ValueError(f"unknown command {command!r}; valid: {', '.join(COMMANDS)}")
