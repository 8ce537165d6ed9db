"""A session's commands: apply them, and train one epoch at a time.

``apply`` validates a command (``engine.babysit.checks``) and records its effect and its event
in one transaction; ``step_epoch`` trains exactly one epoch of a ``running`` session with
``engine.nn.train_segment(..., n_epochs=1)`` and commits the node, its checkpoint, the new head
and the remaining-epoch count in one transaction (so a runner killed mid-epoch loses nothing
and repeats nothing), then lets the automatic babysitter act. ``execute`` is ``apply`` plus, for
``run``, training in this process until the run ends: the runner, the CLI and tests use it.

Only one process writes a session at a time: its runner (``engine.babysit.runner``), or a
foreground CLI that holds the runner slot.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from time import monotonic, sleep

from engine.babysit.checks import COMMANDS, validate
from engine.babysit.live import Live, build_session_dataset, load_state_at
from engine.babysit.policy import (
    auto_act,
    give_up,
    lowered_rate,
    raised_rate,
    retained_nodes,
)
from engine.babysit.replay import rebuild
from engine.nn import TrainConfig, state_to_bytes, train_segment
from engine.run.work import health_every
from engine.storage import blobs
from engine.storage import sessions as store
from engine.storage.db import atomic, retried, retrying, transaction

# Re-exported: callers import these from here too.
__all__ = [
    "COMMANDS", "Live", "apply", "build_session_dataset", "execute", "finish_interrupted",
    "load_state_at", "pace", "record_rejected", "step_epoch", "validate",
]

# --- applying -----------------------------------------------------------------------------------


def _event(conn, session: dict, kind: str, actor: str, payload: dict) -> None:
    head = store.get_node(conn, session["head_node_id"])
    store.add_event(
        conn, session["id"], kind, actor=actor, branch=session["branch"], epoch=head["epoch"],
        payload=payload,
    )


def _rollback(conn, session: dict, node_id: int, *, actor: str, restore: bool, reason: str,
              rule: str = ""):
    head = store.get_node(conn, session["head_node_id"])
    target = store.get_node(conn, node_id)
    new_branch = store.next_branch(conn, session["id"])
    store.insert_branch(conn, session["id"], new_branch, target["branch"], node_id)
    store.mark_abandoned(conn, session["id"], session["branch"])
    payload = {
        "from_node": head["id"], "from_epoch": head["epoch"], "from_branch": session["branch"],
        "to_node": node_id, "to_epoch": target["epoch"], "to_branch": target["branch"],
        "new_branch": new_branch, "restore_config": restore,
    }
    if reason:
        payload["reason"] = reason
    if rule:
        payload["rule"] = rule
    values = {"head_node_id": node_id, "branch": new_branch}
    if restore:
        values["config"] = target["config"]
    store.update_session(conn, session["id"], **values)
    store.add_event(conn, session["id"], "rollback", actor=actor, branch=new_branch,
                    epoch=target["epoch"], payload=payload)


def _set(conn, session: dict, changes: dict, *, actor: str, reason: str = "",
         rule: str = "") -> None:
    old = session["config"]
    payload = {"changes": {k: [old[k], v] for k, v in changes.items() if old[k] != v}}
    if reason:
        payload["reason"] = reason
    if rule:
        payload["rule"] = rule
    store.update_session(conn, session["id"], config={**old, **changes})
    _event(conn, session, "set", actor, payload)


def _finish(conn, session: dict, status: str, reason: str, message: str = "") -> None:
    store.update_session(conn, session["id"], status=status, remaining_epochs=0, message=message)
    _event(conn, session, "done", "auto", {"reason": reason})


@retried("record a rejected command")
def record_rejected(
    conn: sqlite3.Connection, session_id: int, command: str, payload: dict, message: str
) -> None:
    """Record a queued command that could not be applied (event ``rejected``); joins the
    caller's transaction when one is open (the runner's, which consumed the intent)."""
    with atomic(conn):
        session = store.get_session(conn, session_id)
        _event(conn, session, "rejected", "user",
               {"command": command, "payload": payload, "message": message})


@retried("record an interrupted run")
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


@retried("apply a session command")
def apply(
    conn: sqlite3.Connection,
    session_id: int,
    command: str,
    payload: dict | None = None,
    *,
    actor: str = "user",
) -> dict:
    """Validate and record one command and its event in one transaction; return the payload
    as recorded. ``run`` only marks the session running; training is ``step_epoch``'s. Joins
    the caller's transaction when one is open (the runner's, which consumes the intent in it).
    A rollback to an adopted trial's earlier epoch needs its checkpoint rebuilt by replay first
    (``engine.babysit.replay.rebuild``: it trains, so never inside a transaction): done here
    when no transaction is open, else by the caller beforehand (the runner, before it takes
    the intent)."""
    if command == "rollback" and not conn.in_transaction:
        rebuild(conn, session_id, validate(conn, session_id, command, payload)["node_id"])
    with atomic(conn):
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
            target = store.get_node(conn, clean["node_id"])
            if target["checkpoint_id"] is None:  # a replayable epoch, not rebuilt beforehand
                raise ValueError(f"rollback: epoch {target['epoch']} (node {target['id']}) has "
                                 "no checkpoint yet: it is rebuilt before the rollback is taken")
            _rollback(conn, session, clean["node_id"], actor=actor,
                      restore=clean["restore_config"], reason="")
            if session["status"] == "running":
                _finish(conn, store.get_session(conn, session_id), "paused", "rollback")
        elif command == "pace":
            _event(conn, session, "pace", actor, clean)
        elif command == "auto":
            auto = {**session["auto"], **clean}
            store.update_session(conn, session_id, auto=auto)
            _event(conn, session, "auto", actor, auto)
    return clean


def pace(conn: sqlite3.Connection, session_id: int) -> float | None:
    """The session's watching pace in epochs per second (its last ``pace`` event), None: off."""
    event = store.last_event(conn, session_id, "pace")
    return None if event is None else (event["payload"] or {}).get("epochs_per_second")


# --- training -----------------------------------------------------------------------------------


def _prune(conn, session: dict) -> None:
    if session["n_params"] <= session["retention"]["max_params_keep_all"]:
        return
    nodes = store.retention_nodes(conn, session["id"])
    forks = {b["fork_node_id"] for b in store.session_branches(conn, session["id"])}
    keep = retained_nodes(
        nodes, n_params=session["n_params"], retention=session["retention"],
        protected=forks | {session["head_node_id"]},
    )
    store.delete_checkpoints(
        conn, [n["id"] for n in nodes if n["checkpoint_id"] is not None and n["id"] not in keep]
    )


def _babysit(conn, session_id: int, *, diverged: bool) -> tuple[str | None, str]:
    """Let the automatic babysitter look at the lineage and act; return its reason (or None)
    and what it did ("rolled back to epoch 3 and lowered the learning rate to 0.3"; "" when
    nothing).

    When it gives up (``policy.give_up``: too many acts in this run, or the learning rate at its
    floor) it pauses the session with a ``gave_up`` event saying why, and returns that sentence.
    """
    session = store.get_session(conn, session_id)
    auto = session["auto"]
    if not auto["enabled"]:
        return None, ""
    path = store.lineage(conn, session["head_node_id"])
    act = auto_act(path, auto, diverged=diverged)
    if act is None:
        return None, ""
    reason = act.reason
    lr = session["config"]["learning_rate"]
    actions = store.auto_actions_in_run(conn, session_id)
    quit_reason = give_up(auto, learning_rate=lr, actions=actions,
                          lowering=act.rate == "lower")
    if quit_reason is not None:
        message = f"automatic babysitter {quit_reason} ({reason})"
        _event(conn, session, "gave_up", "auto", {
            "reason": quit_reason, "trigger": reason, "actions": actions, "learning_rate": lr,
            "rule": act.rule,
        })
        _finish(conn, session, "paused", "gave_up", message)
        return message, "paused"
    did = []
    if act.target is not None and act.target["id"] != session["head_node_id"]:
        _rollback(conn, session, act.target["id"], actor="auto", restore=False, reason=reason,
                  rule=act.rule)
        session = store.get_session(conn, session_id)
        did.append(f"rolled back to epoch {act.target['epoch']}")
    new_lr = lowered_rate(auto, lr) if act.rate == "lower" else raised_rate(auto, lr)
    _set(conn, session, {"learning_rate": new_lr}, actor="auto", reason=reason, rule=act.rule)
    did.append(f"{'lowered' if act.rate == 'lower' else 'raised'} the learning rate to "
               f"{new_lr:g}")
    return reason, " and ".join(did)


def _finite_metrics(metrics: dict) -> bool:
    return all(
        isinstance(metrics.get(k), int | float) and math.isfinite(metrics[k])
        for k in store.METRIC_FIELDS
    )


def _finish_in_transaction(conn: sqlite3.Connection, session: dict, status: str,
                           reason: str) -> None:
    with transaction(conn):
        _finish(conn, session, status, reason)


def _commit_epoch(conn: sqlite3.Connection, session: dict, result, state, ok: bool,
                  metrics: dict | None, remaining: int | None, outcome: dict) -> None:
    """Store one trained epoch (or its divergence) and what follows from it; fills ``outcome``."""
    session_id = session["id"]
    if ok:
        checkpoint_id = blobs.save_checkpoint(
            conn, state_to_bytes(result.state, history=False), epoch=result.state.epoch
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
        outcome["auto"], outcome["auto_action"] = _babysit(conn, session_id, diverged=False)
    else:
        epoch = state.epoch + 1
        message = result.message or f"non-finite metrics at epoch {epoch}: {metrics}"
        _event(conn, session, "diverged", "auto", {
            "message": message, "epoch": epoch,
            "learning_rate": session["config"]["learning_rate"],
        })
        store.update_session(conn, session_id, remaining_epochs=remaining)
        outcome.update(kind="diverged", epoch=epoch, node_id=None, message=message)
        outcome["auto"], outcome["auto_action"] = _babysit(conn, session_id, diverged=True)
        if store.get_session(conn, session_id)["status"] == "running" and not outcome["auto"]:
            _finish(conn, store.get_session(conn, session_id), "diverged", "diverged",
                    message)
    session = store.get_session(conn, session_id)
    if session["status"] == "running" and remaining == 0:
        _finish(conn, session, "idle", "finished")
    outcome["status"] = store.get_session(conn, session_id)["status"]


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
        retrying(lambda: _finish_in_transaction(conn, session, "idle", "finished"))
        return None
    state = live.head_state(conn, session)
    result = train_segment(
        state, TrainConfig.from_dict(session["config"]), live.data(conn, session), 1,
        health_every=health_every({}), health_last=True,  # every epoch: the babysitter reads it
    )
    metrics = result.metrics[0] if result.metrics else None
    ok = result.status == "ok" and metrics is not None and _finite_metrics(metrics)
    remaining = None if remaining is None else remaining - 1
    outcome = {"branch": session["branch"], "metrics": metrics if ok else None}

    def commit() -> None:  # the epoch is in memory: a lock held elsewhere delays it, no more
        with transaction(conn):
            _commit_epoch(conn, session, result, state, ok, metrics, remaining, outcome)

    retrying(commit, what=f"session {session_id}: record epoch {state.epoch + 1}")
    if ok:  # the in-memory state is the committed head's (unless the babysitter moved it)
        result.state.history.clear()  # the nodes table keeps the metrics; don't grow in memory
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
    paused from ``between_epochs``, or diverged), at the session's pace if it has one. Returns
    ``{"command", "payload", "status", "outcomes"}`` (one outcome per epoch tried, see
    ``step_epoch``)."""
    clean = apply(conn, session_id, command, payload, actor=actor)
    outcomes: list[dict] = []
    if command == "run":
        live = live or Live()
        epochs_per_second = pace(conn, session_id)  # the foreground keeps the pace too
        started = monotonic()
        while (outcome := step_epoch(conn, session_id, live)) is not None:
            if epochs_per_second:
                sleep(max(0.0, started + 1.0 / epochs_per_second - monotonic()))
            started = monotonic()
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if between_epochs is not None:
                between_epochs(conn, session_id)
    status = store.get_session(conn, session_id)["status"]
    return {"command": command, "payload": clean, "status": status, "outcomes": outcomes}
