"""The database opens in WAL mode, migrates once, and rolls back failed transactions."""

from __future__ import annotations

import sqlite3

import pytest

from engine.storage import schema
from engine.storage.db import connect, default_path, transaction


def test_connect_creates_schema_in_wal_mode(db_path):
    conn = connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"studies", "trials", "metrics", "checkpoints", "sessions", "intents"} <= tables


def test_reconnect_keeps_data(db_path):
    conn = connect(db_path)
    with transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'kept')")
    conn.close()
    again = connect(db_path)
    assert again.execute("SELECT value FROM meta WHERE key='probe'").fetchone()[0] == "kept"


def test_failed_transaction_rolls_back(db_path):
    conn = connect(db_path)
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('lost', 'x')")
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM meta WHERE key='lost'").fetchone()[0] == 0


def test_newer_schema_is_refused(db_path):
    conn = connect(db_path)
    with transaction(conn):
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    conn.close()
    with pytest.raises(schema.SchemaError, match="999"):
        connect(db_path)


def test_default_path_follows_environment(db_path):
    assert default_path() == db_path


def test_rows_are_addressable_by_name(db_path):
    conn = connect(db_path)
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert isinstance(row, sqlite3.Row) and row["value"] == str(schema.SCHEMA_VERSION)
