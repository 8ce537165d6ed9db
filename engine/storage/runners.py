"""Runner slots and intents: who is running a study or session, and what they were asked to do.

A *runner* is a detached process that owns one study (``kind="study"``) or one babysitting
session (``kind="session"``) and is the one writer of its results. It claims the slot
``(kind, owner_id)`` in the ``runners`` table, refreshes ``heartbeat_at`` every
``HEARTBEAT_SECONDS`` and releases the slot when it ends. A runner counts as alive while its slot
is not released, its heartbeat is younger than ``STALE_AFTER`` seconds and, on this host, its pid
is a live (non-zombie) process; anything else is a runner that died, and the slot may be claimed
again.

The UI and the CLI never touch a runner's results: they post *intents* (``stop``, ``resume``,
``run_epochs`` ...) that the runner takes, in order, from its main loop.

Every writer here joins the caller's transaction when one is open, so "is a runner alive? then
post" (caller) and "any intent left? then release" (runner) can each be one ``BEGIN IMMEDIATE``
transaction: an intent is then never posted to a runner that is already on its way out.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from pathlib import Path

from engine.storage.blobs import atomic
from engine.storage.db import now

HEARTBEAT_SECONDS = 1.0
STALE_AFTER = 10.0
KINDS = ("study", "session")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"runner kind must be one of {KINDS}, got kind={kind!r}")


def _hostname() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 is the state; the command name (field 2) may hold spaces, so split after ")".
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _row_alive(row: sqlite3.Row | None, at: float) -> bool:
    if row is None or row["stopped_at"] is not None:
        return False
    if at - row["heartbeat_at"] > STALE_AFTER:
        return False
    if row["hostname"] == _hostname() and not pid_alive(row["pid"]):
        return False
    return True


def _slot(conn: sqlite3.Connection, kind: str, owner_id: int) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM runners WHERE kind = ? AND owner_id = ?", (kind, owner_id)
    ).fetchone()


def register_runner(
    conn: sqlite3.Connection, kind: str, owner_id: int, pid: int | None = None
) -> bool:
    """Claim the ``(kind, owner_id)`` slot for ``pid`` (default: this process).

    Returns False when another live runner holds it. Claiming a slot already held by the same
    pid on this host succeeds (``engine.run.launch`` pre-claims the slot for the child it spawns).
    """
    _check_kind(kind)
    pid = os.getpid() if pid is None else int(pid)
    host = _hostname()
    with atomic(conn):
        at = now()
        row = _slot(conn, kind, owner_id)
        if _row_alive(row, at) and not (row["pid"] == pid and row["hostname"] == host):
            return False
        conn.execute(
            "INSERT OR REPLACE INTO runners (kind, owner_id, pid, hostname, started_at,"
            " heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (kind, owner_id, pid, host, at, at),
        )
    return True


def heartbeat(
    conn: sqlite3.Connection, kind: str, owner_id: int, pid: int | None = None
) -> bool:
    """Refresh the slot's heartbeat; False if the slot is no longer held by ``pid`` (then stop)."""
    pid = os.getpid() if pid is None else int(pid)
    with atomic(conn):
        cursor = conn.execute(
            "UPDATE runners SET heartbeat_at = ? WHERE kind = ? AND owner_id = ? AND pid = ?"
            " AND hostname = ? AND stopped_at IS NULL",
            (now(), kind, owner_id, pid, _hostname()),
        )
    return cursor.rowcount == 1


def release_runner(
    conn: sqlite3.Connection, kind: str, owner_id: int, pid: int | None = None
) -> None:
    """Mark the slot released, if ``pid`` (default: this process) still holds it."""
    pid = os.getpid() if pid is None else int(pid)
    with atomic(conn):
        conn.execute(
            "UPDATE runners SET stopped_at = ? WHERE kind = ? AND owner_id = ? AND pid = ?"
            " AND hostname = ? AND stopped_at IS NULL",
            (now(), kind, owner_id, pid, _hostname()),
        )


def runner_alive(conn: sqlite3.Connection, kind: str, owner_id: int) -> bool:
    """A live runner holds the slot: fresh heartbeat, not released, pid alive on this host."""
    return _row_alive(_slot(conn, kind, owner_id), now())


def runner_info(conn: sqlite3.Connection, kind: str, owner_id: int) -> dict | None:
    """The slot as a dict (``pid``, ``hostname``, ``started_at``, ``heartbeat_at``,
    ``stopped_at``, plus ``alive`` and ``heartbeat_age`` in seconds), or None if never claimed."""
    row = _slot(conn, kind, owner_id)
    if row is None:
        return None
    at = now()
    info = dict(row)
    info["alive"] = _row_alive(row, at)
    info["heartbeat_age"] = at - row["heartbeat_at"]
    return info


def _intent(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"],
        "command": row["command"],
        "payload": json.loads(row["payload_json"]),
        "created_at": row["created_at"],
        "consumed_at": row["consumed_at"],
    }


def post_intent(
    conn: sqlite3.Connection, kind: str, owner_id: int, command: str, payload: dict | None = None
) -> int:
    """Queue ``command`` (with a JSON-able ``payload``) for the runner of ``(kind, owner_id)``."""
    _check_kind(kind)
    if not command:
        raise ValueError("intent command must be a non-empty string, got command=''")
    with atomic(conn):
        cursor = conn.execute(
            "INSERT INTO intents (kind, owner_id, command, payload_json, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (kind, owner_id, command, json.dumps(payload or {}), now()),
        )
    return int(cursor.lastrowid)


def take_intents(conn: sqlite3.Connection, kind: str, owner_id: int) -> list[dict]:
    """The pending intents in the order posted, marked consumed (each is taken exactly once)."""
    with atomic(conn):
        rows = conn.execute(
            "SELECT * FROM intents WHERE kind = ? AND owner_id = ? AND consumed_at IS NULL"
            " ORDER BY id",
            (kind, owner_id),
        ).fetchall()
        if rows:
            at = now()
            conn.executemany(
                "UPDATE intents SET consumed_at = ? WHERE id = ?", [(at, r["id"]) for r in rows]
            )
    taken = [_intent(r) for r in rows]
    for intent in taken:
        intent["consumed_at"] = at
    return taken


def pending_intents(conn: sqlite3.Connection, kind: str, owner_id: int) -> list[dict]:
    """The intents not yet taken, in the order posted (nothing is consumed)."""
    rows = conn.execute(
        "SELECT * FROM intents WHERE kind = ? AND owner_id = ? AND consumed_at IS NULL"
        " ORDER BY id",
        (kind, owner_id),
    ).fetchall()
    return [_intent(r) for r in rows]


class Heartbeat:
    """A daemon thread that keeps a runner's slot fresh, on its own connection.

    ``Heartbeat(db_path, kind, owner_id).start()`` beats every ``HEARTBEAT_SECONDS`` until
    ``stop()``; ``lost`` is set if the slot was taken over (the runner must stop writing).
    Beating from a thread keeps the slot fresh while the main loop waits on slow work.
    """

    def __init__(self, db_path, kind: str, owner_id: int, pid: int | None = None):
        import threading

        self.db_path, self.kind, self.owner_id = db_path, kind, owner_id
        self.pid = os.getpid() if pid is None else pid
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{kind}-{owner_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        from engine.storage.db import connect

        conn = connect(self.db_path)
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    if not heartbeat(conn, self.kind, self.owner_id, self.pid):
                        self.lost.set()
                        return
                except sqlite3.OperationalError:
                    continue  # busy beyond the timeout: try again at the next beat
        finally:
            conn.close()
