"""The session runner: the one process that writes a session's results, and how to reach it.

``serve`` claims the session's runner slot (``engine.storage.runners``, kind ``"session"``),
heartbeats from a small thread (so a long epoch does not look like a dead runner), and loops:
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
import socket
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from engine.babysit.commands import Live, apply, finish_interrupted, record_rejected, step_epoch
from engine.babysit.validate import validate as validate_command
from engine.run import launch
from engine.storage import runners
from engine.storage import sessions as store
from engine.storage.db import connect, now, transaction

KIND = "session"
IDLE_EXIT = 30.0
POLL_SECONDS = 0.1


def db_path_of(conn: sqlite3.Connection) -> Path:
    """The file behind a connection (to hand to a child process)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2])
    raise ValueError("the connection has no database file (in-memory?); pass db_path")


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


class _Heartbeat(threading.Thread):
    """Refreshes the slot every ``interval`` seconds on its own connection."""

    def __init__(self, db_path: Path, session_id: int, interval: float) -> None:
        super().__init__(name=f"heartbeat-session-{session_id}", daemon=True)
        self.db_path, self.session_id, self.interval = db_path, session_id, interval
        self.stop = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        conn = connect(self.db_path)
        try:
            while not self.stop.wait(self.interval):
                if not runners.heartbeat(conn, KIND, self.session_id):
                    self.lost.set()
                    return
        finally:
            conn.close()


def _release_if_idle(conn: sqlite3.Connection, session_id: int) -> bool:
    """Release the slot unless intents are pending or the session is running (atomically)."""
    with transaction(conn):
        pending = conn.execute(
            "SELECT COUNT(*) FROM intents WHERE kind = ? AND owner_id = ? AND consumed_at IS NULL",
            (KIND, session_id),
        ).fetchone()[0]
        status = store.get_session(conn, session_id)["status"]
        if pending or status == "running":
            return False
        conn.execute(
            "UPDATE runners SET stopped_at = ? WHERE kind = ? AND owner_id = ? AND pid = ?"
            " AND hostname = ? AND stopped_at IS NULL",
            (now(), KIND, session_id, os.getpid(), socket.gethostname()),
        )
    return True


def _apply_intents(conn: sqlite3.Connection, session_id: int) -> int:
    intents = runners.take_intents(conn, KIND, session_id)
    for intent in intents:
        try:
            apply(conn, session_id, intent["command"], intent["payload"])
        except (ValueError, LookupError) as err:
            record_rejected(conn, session_id, intent["command"], intent["payload"], str(err))
    return len(intents)


def serve(
    conn: sqlite3.Connection,
    session_id: int,
    *,
    idle_exit: float = IDLE_EXIT,
    poll: float = POLL_SECONDS,
    heartbeat_seconds: float = runners.HEARTBEAT_SECONDS,
    on_outcome: Callable[[dict], None] | None = None,
) -> int:
    """Run the session's runner loop in this process until idle for ``idle_exit`` seconds.

    Returns 0 when done, 1 if another live runner holds the session, 2 if training failed
    (the session is then ``failed`` with the error as its message), 130 on Ctrl-C (the session
    is paused; the epoch in progress is not stored).
    """
    store.get_session(conn, session_id)
    if not runners.register_runner(conn, KIND, session_id):
        return 1
    beat = _Heartbeat(db_path_of(conn), session_id, heartbeat_seconds)
    beat.start()
    live, released, code = Live(), False, 0
    last_work = time.monotonic()
    try:
        while not beat.lost.is_set():
            if _apply_intents(conn, session_id):
                last_work = time.monotonic()
            outcome = step_epoch(conn, session_id, live)
            if outcome is not None:
                last_work = time.monotonic()
                if on_outcome is not None:
                    on_outcome(outcome)
                continue
            if time.monotonic() - last_work >= idle_exit and _release_if_idle(conn, session_id):
                released = True
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        finish_interrupted(conn, session_id, "paused", "interrupted (Ctrl-C)")
        code = 130
    except Exception as err:  # noqa: BLE001 - recorded on the session, then reported
        traceback.print_exc()
        finish_interrupted(conn, session_id, "failed", f"{type(err).__name__}: {err}")
        code = 2
    finally:
        beat.stop.set()
        beat.join(timeout=5)
        if not released:
            runners.release_runner(conn, KIND, session_id)
    return code
