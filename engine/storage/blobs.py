"""Content stored by hash: uploaded CSV text and model checkpoints.

Uploads are stored once and addressed by the sha256 of their UTF-8 text, which is what a
``DatasetSpec(kind="csv", csv_sha256=...)`` names. Checkpoints (``.npz`` bytes of a
``TrainState``) are stored with their sha256 and verified on every read, so a damaged blob is
an error rather than a silently wrong model. Both studies and babysitting sessions use the
checkpoint table.

``atomic(conn)`` is a write transaction that joins the caller's transaction if one is open, so
the small writers here compose into one short ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3

from engine.storage.db import atomic, now


class ChecksumError(ValueError):
    """A stored blob does not match its sha256, or a given sha256 does not match the bytes."""


class NotFoundError(LookupError):
    """No row with the given id or hash."""


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def save_upload(conn: sqlite3.Connection, name: str, text: str) -> str:
    """Store CSV ``text`` once (a second save of the same text is a no-op); return its sha256."""
    data = text.encode("utf-8")
    digest = sha256_hex(data)
    with atomic(conn):
        conn.execute(
            "INSERT OR IGNORE INTO uploads (sha256, name, text, n_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (digest, name, text, len(data), now()),
        )
    return digest


def get_upload(conn: sqlite3.Connection, sha256: str) -> str:
    """The stored text for ``sha256``; ``NotFoundError`` if there is none."""
    row = conn.execute("SELECT text FROM uploads WHERE sha256 = ?", (sha256,)).fetchone()
    if row is None:
        raise NotFoundError(f"no uploaded file with sha256={sha256!r}; upload the CSV again")
    return row["text"]


def list_uploads(conn: sqlite3.Connection) -> list[dict]:
    """Every upload without its text: ``sha256``, ``name``, ``n_bytes``, ``created_at``."""
    rows = conn.execute(
        "SELECT sha256, name, n_bytes, created_at FROM uploads ORDER BY created_at"
    ).fetchall()
    return [dict(r) for r in rows]


def save_checkpoint(
    conn: sqlite3.Connection, blob: bytes, *, epoch: int, sha256: str | None = None
) -> int:
    """Store a checkpoint and return its id; a given ``sha256`` must match the bytes."""
    digest = sha256_hex(blob)
    if sha256 is not None and sha256 != digest:
        raise ChecksumError(
            f"checkpoint at epoch {epoch} does not match its sha256: got {sha256}, "
            f"the bytes hash to {digest}"
        )
    with atomic(conn):
        cursor = conn.execute(
            "INSERT INTO checkpoints (blob, sha256, n_bytes, epoch, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (sqlite3.Binary(blob), digest, len(blob), int(epoch), now()),
        )
    return int(cursor.lastrowid)


def load_checkpoint(conn: sqlite3.Connection, checkpoint_id: int) -> bytes:
    """The checkpoint's bytes, verified against the stored sha256."""
    row = conn.execute(
        "SELECT blob, sha256 FROM checkpoints WHERE id = ?", (checkpoint_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no checkpoint with id={checkpoint_id}")
    blob = bytes(row["blob"])
    if sha256_hex(blob) != row["sha256"]:
        raise ChecksumError(
            f"checkpoint {checkpoint_id} is damaged: its bytes no longer match sha256 "
            f"{row['sha256']}"
        )
    return blob


def delete_checkpoint_if_unused(conn: sqlite3.Connection, checkpoint_id: int) -> bool:
    """Delete a checkpoint no trial or session node points at; True if it was deleted."""
    with atomic(conn):
        cursor = conn.execute(
            "DELETE FROM checkpoints WHERE id = ?"
            " AND NOT EXISTS (SELECT 1 FROM trials WHERE checkpoint_id = ?)"
            " AND NOT EXISTS (SELECT 1 FROM session_nodes WHERE checkpoint_id = ?)",
            (checkpoint_id, checkpoint_id, checkpoint_id),
        )
    return cursor.rowcount == 1
