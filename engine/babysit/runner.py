"""The session runner: the one process that writes a session's results, and how to reach it.

``serve`` runs inside an ``engine.run.host.RunnerHost`` (the session's runner slot, kind
``"session"``, and its heartbeat thread, so a long epoch does not look like a dead runner), and
loops:
take the pending intents in order and ``apply`` them, then train one epoch if the session is
running. It keeps the dataset and the head's TrainState in memory between epochs. With nothing
to do for ``idle_exit`` seconds it releases the slot and exits; the release checks for pending
intents in the same transaction, so an intent posted at that moment is never stranded (either
this runner sees it, or ``ensure_runner`` sees a free slot and starts another).

A runner that died (kill -9, a reboot) leaves the slot stale: ``session_view`` then says
``needs_runner`` and ``ensure_runner`` starts a new one, which continues a ``running`` session
from its head node with the remaining epochs.

``send`` is how the UI talks to a session: validate, post an intent, make sure a runner is alive.
"""

from __future__ import annotations

import os
import sqlite3
import time
import traceback
from collections.abc import Callable

from engine.babysit.checks import validate as validate_command
from engine.babysit.commands import Live, apply, finish_interrupted, record_rejected, step_epoch
from engine.babysit.commands import pace as session_pace
from engine.babysit.replay import rebuild
from engine.run import launch
from engine.run.host import RunnerHost
from engine.storage import runners
from engine.storage import sessions as store
from engine.storage.db import db_path_of

KIND = "session"
IDLE_EXIT = 30.0
POLL_SECONDS = 0.1


def ensure_runner(
    conn: sqlite3.Connection, session_id: int, *, db_path: str | os.PathLike | None = None
) -> int | None:
    """Spawn ``python -m engine babysit serve ID`` unless a live runner holds the session;
    return the new pid or None."""
    store.get_session(conn, session_id)
    path = db_path if db_path is not None else db_path_of(conn)
    return launch.ensure_runner(conn, KIND, session_id, ["babysit", "serve", str(session_id)], path)


def send(conn: sqlite3.Connection, session_id: int, command: str, **payload) -> int:
    """Validate a command now (ValueError with a clear message), queue it for the session's
    runner and start one if none is alive; return the intent id."""
    clean = validate_command(conn, session_id, command, payload)
    intent_id = runners.post_intent(conn, KIND, session_id, command, clean)
    ensure_runner(conn, session_id)
    return intent_id


def _busy(session_id: int) -> Callable[[sqlite3.Connection], bool]:
    """Whether the session still has work: a running session keeps its runner."""
    return lambda conn: store.get_session(conn, session_id)["status"] == "running"


def _rebuild_rollback_targets(conn: sqlite3.Connection, session_id: int) -> dict[int, str]:
    """Before the queued commands are taken (each in a transaction), rebuild by replay the
    checkpoints their rollbacks go to (an adopted trial's earlier epochs: training, so outside
    any transaction). Returns ``{intent id: why it cannot be rebuilt}``; a command that no
    longer validates is left for ``apply`` to refuse."""
    why = {}
    for intent in runners.pending_intents(conn, KIND, session_id):
        if intent["command"] != "rollback":
            continue
        try:
            clean = validate_command(conn, session_id, "rollback", intent["payload"])
            rebuild(conn, session_id, clean["node_id"])
        except ValueError as err:
            why[intent["id"]] = str(err)
    return why


def _apply_intents(conn: sqlite3.Connection, host: RunnerHost, session_id: int) -> int:
    """Apply the queued commands in order, each consumed in the transaction that applies it:
    a page never sees a ``run`` taken but the session not yet running (it would stop watching),
    and a kill never loses a command. A refused one is recorded as a ``rejected`` event."""
    unbuilt = _rebuild_rollback_targets(conn, session_id)

    def handle(conn: sqlite3.Connection, intent: dict) -> None:
        if intent["id"] in unbuilt:
            raise ValueError(unbuilt[intent["id"]])
        apply(conn, session_id, intent["command"], intent["payload"])

    def refuse(conn: sqlite3.Connection, intent: dict, err: Exception) -> None:
        record_rejected(conn, session_id, intent["command"], intent["payload"], str(err))

    return host.obey_intents(conn, handle, refuse)


def serve(
    conn: sqlite3.Connection,
    session_id: int,
    *,
    idle_exit: float = IDLE_EXIT,
    poll: float = POLL_SECONDS,
    heartbeat_seconds: float = runners.HEARTBEAT_SECONDS,
    on_outcome: Callable[[dict], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the session's runner loop in this process until idle for ``idle_exit`` seconds.

    Returns 0 when done, 1 if another live runner holds the session, 2 if training failed
    (the session is then ``failed`` with the error as its message), 130 on Ctrl-C (the session
    is paused; the epoch in progress is not stored). SIGTERM is the caller's (``cmd_serve``
    exits at once and leaves a running session ``running`` for the next runner).

    With a watching pace (command ``pace``: epochs per second) an epoch starts no sooner than
    ``1 / pace`` seconds after the one before started; meanwhile intents are still taken every
    ``poll`` seconds, so a pause or a new pace applies at once. ``clock`` / ``sleep`` are for
    tests.
    """
    store.get_session(conn, session_id)
    with RunnerHost(db_path_of(conn), KIND, session_id, signals=False,
                    heartbeat_seconds=heartbeat_seconds) as host:
        if not host.claimed:
            return 1
        live, code = Live(), 0
        last_work = clock()
        epochs_per_second, next_epoch_at = session_pace(conn, session_id), None
        try:
            while not host.lost:
                if _apply_intents(conn, host, session_id):
                    last_work = clock()
                    epochs_per_second = session_pace(conn, session_id)
                if epochs_per_second and next_epoch_at is not None:
                    wait = next_epoch_at - clock()
                    if wait > 0 and _running(conn, session_id):
                        last_work = clock()
                        sleep(min(poll, wait))
                        continue
                started = clock()
                outcome = step_epoch(conn, session_id, live)
                if outcome is not None:
                    last_work = clock()
                    next_epoch_at = (started + 1.0 / epochs_per_second if epochs_per_second
                                     else None)
                    if on_outcome is not None:
                        on_outcome(outcome)
                    continue
                next_epoch_at = None  # the run ended: the next one starts at once
                idle = clock() - last_work >= idle_exit
                if idle and host.release_if_idle(conn, _busy(session_id)):
                    break
                sleep(poll)
        except KeyboardInterrupt:
            finish_interrupted(conn, session_id, "paused", "interrupted (Ctrl-C)")
            code = 130
        except Exception as err:  # noqa: BLE001 - recorded on the session, then reported
            traceback.print_exc()
            finish_interrupted(conn, session_id, "failed", f"{type(err).__name__}: {err}")
            code = 2
    return code


def _running(conn: sqlite3.Connection, session_id: int) -> bool:
    return store.get_session(conn, session_id)["status"] == "running"
