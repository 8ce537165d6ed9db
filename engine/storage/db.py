"""SQLite connections: where the database lives, how to open it, how to write to it.

The database is the source of truth for everything a user makes. Many processes open it at once
(the Streamlit server, one runner per study or session, the CLI), so every connection uses WAL
mode and a busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE``: in WAL mode
a plain ``BEGIN`` that reads and then writes fails at once with "database is locked", ignoring
the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.storage.schema import SCHEMA_VERSION, migrate, schema_version

ENV_VAR = "PANDA_CAVIAR_DB"
DEFAULT_PATH = Path("data") / "panda_caviar.db"
BUSY_TIMEOUT_MS = 30_000


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
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if schema_version(conn) != SCHEMA_VERSION:  # a read: no write lock while a runner is busy
        with transaction(conn):
            migrate(conn)
    return conn


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


def now() -> float:
    """Wall-clock seconds since the epoch: every timestamp column uses this."""
    return time.time()
