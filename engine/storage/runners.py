"""Runner slots and intents: who is running a study or session, and what they were asked to do.

A *runner* is a detached process that owns one study (``kind="study"``) or one babysitting
session (``kind="session"``) and is the one writer of its results. It claims the slot
``(kind, owner_id)`` in the ``runners`` table, refreshes ``heartbeat_at`` every
``HEARTBEAT_SECONDS`` and releases the slot when it ends (the loop around it is
``engine.run.host``). A runner counts as alive while its slot is not released and:

- on this host, its pid is a live (non-zombie) process started when the slot was claimed
  (``pid_started``, so a reused pid does not count), *whatever its heartbeat says*: a database
  locked by another process for longer than ``STALE_AFTER`` delays heartbeats, and a live runner
  must never be taken over;
- on another host, its heartbeat is younger than ``STALE_AFTER`` seconds.

Anything else is a runner that died, and the slot may be claimed again.

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
from collections.abc import Callable
from pathlib import Path

from engine.storage.db import atomic, now, savepoint, transaction

HEARTBEAT_SECONDS = 1.0
STALE_AFTER = 10.0
KINDS = ("study", "session")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"runner kind must be one of {KINDS}, got kind={kind!r}")


def _hostname() -> str:
    return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 on (the command name, field 2, may hold spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


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
    fields = _stat_fields(pid)
    return fields is None or fields[0] not in ("Z", "X")


def pid_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, field 22 of ``/proc/<pid>/stat``),
    or None where /proc cannot tell: with the pid, it names one process for good."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def _row_alive(row: sqlite3.Row | None, at: float) -> bool:
    if row is None or row["stopped_at"] is not None:
        return False
    if row["hostname"] != _hostname():
        return at - row["heartbeat_at"] <= STALE_AFTER
    if not pid_alive(row["pid"]):
        return False
    started = row["pid_started"]
    return started is None or started == pid_started(row["pid"])


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
    with atomic(conn):
        at = now()
        row = _slot(conn, kind, owner_id)
        if _row_alive(row, at) and not (row["pid"] == pid and row["hostname"] == _hostname()):
            return False
        _claim(conn, kind, owner_id, pid, at)
    return True


def _claim(conn: sqlite3.Connection, kind: str, owner_id: int, pid: int, at: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO runners (kind, owner_id, pid, hostname, started_at,"
        " heartbeat_at, stopped_at, pid_started) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
        (kind, owner_id, pid, _hostname(), at, at, pid_started(pid)),
    )


def claim_for_child(
    conn: sqlite3.Connection, kind: str, owner_id: int, start: Callable[[], int]
) -> int | None:
    """In one transaction: unless a live runner holds the slot, call ``start()`` (which starts
    a process and returns its pid) and claim the slot for that pid. The pid, or None.

    So two clicks never start two runners, and the owner never looks interrupted while the
    child is still starting (its own ``register_runner`` then succeeds: same pid)."""
    _check_kind(kind)
    with atomic(conn):
        if _row_alive(_slot(conn, kind, owner_id), now()):
            return None
        pid = start()
        _claim(conn, kind, owner_id, pid, now())
    return pid


def release_if_idle(
    conn: sqlite3.Connection, kind: str, owner_id: int,
    busy: Callable[[sqlite3.Connection], bool] = lambda conn: False, pid: int | None = None,
) -> bool:
    """In one transaction: release the slot unless intents are pending or ``busy(conn)``;
    whether it was released. An intent posted at that moment is never stranded: either the
    runner sees it, or the poster sees a free slot and starts another runner."""
    with atomic(conn):
        if has_pending_intents(conn, kind, owner_id) or busy(conn):
            return False
        release_runner(conn, kind, owner_id, pid)
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


_PENDING = ("SELECT * FROM intents WHERE kind = ? AND owner_id = ? AND consumed_at IS NULL"
            " ORDER BY id")  # an owner's intents not yet taken, in the order posted


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
    """The pending intents in the order posted, marked consumed (each is taken exactly once).

    For a runner that acts on them, ``obey_intents`` is the safe form: here the intents are
    consumed before the caller applies them, so a kill in between loses them."""
    with atomic(conn):
        rows = conn.execute(
            _PENDING, (kind, owner_id),
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


def obey_intents(
    conn: sqlite3.Connection,
    kind: str,
    owner_id: int,
    handle: Callable[[sqlite3.Connection, dict], None],
    refuse: Callable[[sqlite3.Connection, dict, Exception], None] | None = None,
) -> int:
    """Apply the pending intents in order, each in ONE transaction with what ``handle`` writes.

    Every reader, and a runner started after a kill at any moment, sees an intent either
    pending with none of its effects or consumed with all of them: never consumed and not
    applied (a run asked for would look finished before it began, and be lost on a crash).
    ``handle(conn, intent)`` runs inside the transaction (its writers must join it). When it
    raises ValueError or LookupError and ``refuse`` is given, its writes are undone, the intent
    is still consumed and ``refuse(conn, intent, error)`` records why, in the same
    transaction. Any other error rolls the transaction back and propagates: the intent stays
    pending. Returns the number of intents consumed."""
    done = 0
    while True:
        with transaction(conn):
            row = conn.execute(
                _PENDING + " LIMIT 1", (kind, owner_id),
            ).fetchone()
            if row is None:
                return done
            intent = {**_intent(row), "consumed_at": now()}
            conn.execute("UPDATE intents SET consumed_at = ? WHERE id = ?",
                         (intent["consumed_at"], intent["id"]))
            try:
                with savepoint(conn, "intent"):
                    handle(conn, intent)
            except (ValueError, LookupError) as err:
                if refuse is None:
                    raise
                refuse(conn, intent, err)
        done += 1


def has_pending_intents(conn: sqlite3.Connection, kind: str, owner_id: int) -> bool:
    """Whether any intent waits for the runner of ``(kind, owner_id)`` (one cheap query)."""
    return conn.execute(
        "SELECT 1 FROM intents WHERE kind = ? AND owner_id = ? AND consumed_at IS NULL LIMIT 1",
        (kind, owner_id),
    ).fetchone() is not None


def pending_intents(conn: sqlite3.Connection, kind: str, owner_id: int) -> list[dict]:
    """The intents not yet taken, in the order posted (nothing is consumed)."""
    rows = conn.execute(
        _PENDING, (kind, owner_id),
    ).fetchall()
    return [_intent(r) for r in rows]
