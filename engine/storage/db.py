"""SQLite connections: where the database lives, how to open it, how to write to it.

The database is the source of truth for everything a user makes. Many processes open it at once
(the Streamlit server, one runner per study or session, the CLI), so every connection uses WAL
mode and a busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE``: in WAL mode
a plain ``BEGIN`` that reads and then writes fails at once with "database is locked", ignoring
the busy timeout.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from engine.storage.schema import SCHEMA_VERSION, migrate, schema_version

ENV_VAR = "PANDA_CAVIAR_DB"
DEFAULT_PATH = Path("data") / "panda_caviar.db"
BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")
log = logging.getLogger("engine.storage")


def busy_timeout_ms() -> int:
    """How long a statement waits for another writer's lock: 30 s, or
    ``$PANDA_CAVIAR_BUSY_TIMEOUT_MS`` (the fault tests make it short)."""
    return int(os.environ.get("PANDA_CAVIAR_BUSY_TIMEOUT_MS") or BUSY_TIMEOUT_MS)


def default_path() -> Path:
    """The database path: ``$PANDA_CAVIAR_DB`` if set, else ``./data/panda_caviar.db``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def connect(path: str | os.PathLike | None = None) -> sqlite3.Connection:
    """Open (and if needed create and migrate) the database; one connection per thread.

    Autocommit mode (``isolation_level=None``): reads see the latest commit, writes go through
    ``transaction``. Rows come back as ``sqlite3.Row`` (access by column name).
    """
    path = Path(path) if path is not None else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    timeout = busy_timeout_ms()
    conn = sqlite3.connect(path, timeout=timeout / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={timeout}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if schema_version(conn) != SCHEMA_VERSION:  # a read: no write lock while a runner is busy
        with transaction(conn):
            migrate(conn)
    return conn


Db = sqlite3.Connection | str | os.PathLike  # what the facades take: an open connection or a path


@contextmanager
def opened(db: Db) -> Iterator[sqlite3.Connection]:
    """``db`` itself when it is a connection (left open), else a connection closed afterwards."""
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = connect(db)
    try:
        yield conn
    finally:
        conn.close()


def db_path_of(conn: sqlite3.Connection) -> Path:
    """The file behind a connection (what a spawned runner must open)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2])
    raise ValueError("the connection has no database file (in-memory?); pass db_path")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``transaction(conn)``, or nothing when the caller already opened one (the writes join
    it)."""
    if conn.in_transaction:
        yield conn
    else:
        with transaction(conn):
            yield conn


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """Writes inside are undone together if the block raises (the caller's transaction goes on)."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def now() -> float:
    """Wall-clock seconds since the epoch: every timestamp column uses this."""
    return time.time()


def is_transient(err: BaseException) -> bool:
    """A lock held by another process past the busy timeout: worth waiting out, never fatal."""
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retried(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a function whose writes are one transaction: ``retrying`` on every call."""
    import functools

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> T:
            return retrying(lambda: fn(*args, **kwargs), what=what)

        return wrapper

    return decorate


def retrying(
    write: Callable[[], T], *, what: str = "write", give_up: Callable[[], bool] | None = None,
    first_wait: float = 0.2, max_wait: float = 5.0,
) -> T:
    """Run ``write()`` until it gets past a transient lock (``is_transient``), waiting
    ``first_wait`` seconds, doubling up to ``max_wait``, between tries; any other error is
    raised. A runner holds its result in memory meanwhile, so a lock held for minutes by another
    process delays the write but never loses it. ``give_up()`` (checked after each failure)
    ends the wait by raising the last error."""
    wait = first_wait
    while True:
        try:
            return write()
        except sqlite3.OperationalError as err:
            if not is_transient(err) or (give_up is not None and give_up()):
                raise
            log.warning("%s: %s; trying again in %.1f s", what, err, wait)
            time.sleep(wait)
            wait = min(wait * 2, max_wait)
