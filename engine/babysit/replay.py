"""Rolling back into an adopted trial's own history: its earlier epochs, rebuilt by replay.

A study keeps each trial's latest checkpoint only, so a session that adopts a trial at epoch N
gets nodes for epochs 0..N-1 with the trial's metrics and no checkpoint. Those epochs are still
reachable: the trial started from ``new_state(model, trial_seed)`` (the session's own ``model``
and ``seed``) and training is deterministic (resume is bitwise, BLAS on one thread), so
replaying epochs 1..k from there with the knobs each node records gives the trial's epoch-k
weights. The replay is checked against the trial's stored metrics, epoch by epoch; a trial
that did not train that way (a PBT exploit swapped its weights, a babysat model returned to
its study) differs, and the rollback is refused with both numbers. A trial trained stacked
differs from epoch 1 on: ``first_epoch_replays`` tells it at adoption, and its earlier epochs
are then no targets at all (the adopted event's ``replay: false``).

``replay_plan`` (no training: what ``validate`` calls in the UI's process) says whether a node
can be rebuilt; ``rebuild`` (the runner, or a foreground CLI holding the slot) trains and stores
the node's checkpoint in a transaction of its own, so the rollback then proceeds as usual.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from engine.babysit.live import build_session_dataset, load_state_at
from engine.nn import ModelSpec, TrainConfig, TrainState, new_state, state_to_bytes, train_segment
from engine.storage import blobs
from engine.storage import sessions as store
from engine.storage.db import retrying, transaction

CHECKED = ("train_loss", "train_acc", "val_loss", "val_acc")  # must match bitwise


@dataclass(frozen=True)
class ReplayPlan:
    """Start from ``start`` (a node with a checkpoint, or None: the trial's initial weights)
    and train one epoch for each of ``steps`` (the nodes after it, down to the target)."""

    start: dict | None
    steps: tuple[dict, ...]


def first_epoch_replays(state: TrainState, config: TrainConfig, data, recorded: dict) -> bool:
    """Whether one epoch from ``state`` (a trial's initial weights) gives the trial's recorded
    epoch 1 bitwise. A trial the runner trained stacked does not (float32 rounding: 5.6e-8 on
    the demo's first train loss), and the gap grows: replayed alone, its epoch-30 losses were
    up to 2.4x off, so each of its earlier epochs offered as a rollback target was refused."""
    result = train_segment(state, config, data, 1)
    got = result.metrics[0] if result.metrics else {}
    return result.status == "ok" and all(got.get(k) == recorded.get(k) for k in CHECKED)


def adopted_epoch(conn: sqlite3.Connection, session: dict) -> int | None:
    """The epoch the session adopted its trial at (None: a session from scratch)."""
    if session.get("source_trial_id") is None:
        return None
    event = store.first_event(conn, session["id"], "adopted")
    if event is None or not (event["payload"] or {}).get("replay", True):
        return None  # a babysat model returned to its study: its epochs are another session's
    return int((event["payload"] or {}).get("epoch", 0))


def initial_only(conn: sqlite3.Connection, session: dict) -> bool:
    """Whether only the adopted trial's epoch 0 can be rebuilt: its later epochs do not replay
    (it trained stacked), but its initial weights are its seed's (``new_state``, no training)."""
    if session.get("source_trial_id") is None:
        return False
    payload = (store.first_event(conn, session["id"], "adopted") or {}).get("payload") or {}
    return not payload.get("replay", True) and bool(payload.get("initial", False))


def replay_plan(conn: sqlite3.Connection, session: dict, node: dict,
                adopted: int | None = None) -> ReplayPlan | None:
    """How ``node`` (without a checkpoint) can be rebuilt, or None when it cannot: only an
    adopted trial's earlier epochs (branch 0, before the adopted epoch) with their metrics,
    or only its epoch 0 (``initial_only``)."""
    if node["checkpoint_id"] is not None or node["branch"] != 0:
        return None
    adopted = adopted_epoch(conn, session) if adopted is None else adopted
    if adopted is None and node["epoch"] == 0 and initial_only(conn, session):
        return ReplayPlan(None, ())
    if adopted is None or node["epoch"] >= adopted:
        return None
    path = store.lineage(conn, node["id"])
    kept = [i for i, n in enumerate(path) if n["checkpoint_id"] is not None]
    first = kept[-1] + 1 if kept else 1  # no kept ancestor: from the initial weights (epoch 0)
    if not kept and path[0]["epoch"] != 0:
        return None
    steps = tuple(path[first:])
    if any(n["train_loss"] is None for n in steps):
        return None
    return ReplayPlan(path[kept[-1]] if kept else None, steps)


def rebuildable(conn: sqlite3.Connection, session: dict, nodes: list[dict]) -> set[int]:
    """Ids of ``nodes`` (every node of the session) that ``rebuild`` can give a checkpoint, in
    one pass over the history (branch 0 is one chain: rollbacks start new branches); the
    answer of ``replay_plan`` for each, for ``session_view``."""
    adopted = adopted_epoch(conn, session)
    if adopted is None:
        return {n["id"] for n in nodes if n["branch"] == 0 and n["epoch"] == 0
                and n["checkpoint_id"] is None and initial_only(conn, session)}
    history = sorted((n for n in nodes if n["branch"] == 0 and n["epoch"] < adopted),
                     key=lambda n: n["epoch"])
    out, reachable = set(), bool(history) and history[0]["epoch"] == 0
    for n in history:
        if n["checkpoint_id"] is not None:
            reachable = True
            continue
        reachable = reachable and (n["epoch"] == 0 or n["train_loss"] is not None)
        if reachable:
            out.add(n["id"])
    return out


def _start_state(conn: sqlite3.Connection, session: dict, plan: ReplayPlan) -> TrainState:
    if plan.start is not None:
        return load_state_at(conn, plan.start["id"])
    return new_state(ModelSpec.from_dict(session["model"]), int(session["seed"]))


def rebuild(conn: sqlite3.Connection, session_id: int, node_id: int) -> bool:
    """Replay the adopted trial up to ``node_id`` and store that node's checkpoint; False when
    the node needs none (it has one, or is no adopted epoch). ValueError when the replay does
    not reproduce the trial's recorded metrics (nothing stored then)."""
    session = store.get_session(conn, session_id)
    node = store.get_node(conn, node_id)
    plan = replay_plan(conn, session, node)
    if plan is None:
        return False
    state = _start_state(conn, session, plan)
    data = build_session_dataset(conn, session["dataset"])
    for step in plan.steps:
        result = train_segment(state, TrainConfig.from_dict(step["config"]), data, 1)
        got = result.metrics[0] if result.metrics else {}
        wrong = [k for k in CHECKED if got.get(k) != step[k]]
        if result.status != "ok" or wrong:
            key = wrong[0] if wrong else "val_loss"
            origin = ("initial weights" if plan.start is None
                      else f"epoch {plan.start['epoch']}")
            raise ValueError(
                f"rollback: epoch {node['epoch']} of the adopted trial cannot be rebuilt: "
                f"replaying epoch {step['epoch']} from the trial's {origin} gives "
                f"{key}={got.get(key)!r}, the trial recorded {step[key]!r} (it trained "
                "another way: a PBT exploit, a stacked run, or a babysat model returned to the "
                "study). Only the epochs kept with a checkpoint can be rolled back to."
            )
        state = result.state
    blob = state_to_bytes(state, history=False)

    def store_it() -> None:
        with transaction(conn):
            if store.get_node(conn, node_id)["checkpoint_id"] is None:
                checkpoint_id = blobs.save_checkpoint(conn, blob, epoch=state.epoch)
                store.set_node_checkpoint(conn, node_id, checkpoint_id)

    retrying(store_it, what=f"session {session_id}: store the rebuilt epoch {node['epoch']}")
    return True
