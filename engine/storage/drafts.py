"""Drafts: what a person was typing into a form, kept so a refresh or a server restart finds it.

One row per named form (``"designer"``: the search designer's inputs and the dataset chosen
for it), a JSON object of plain values (widget key -> str | int | float | bool | None | list |
dict of those). The pages decide what goes in and check every value before they use it: a
draft is a convenience, never trusted input. At most ``MAX_DRAFT_BYTES`` of JSON a draft.

A form may keep one draft per browser tab: names ``"<family>:<key>"`` (``"designer:3f9a..."``)
form the family ``"<family>"`` together with the plain name (the one draft of a form before
drafts were per tab). :func:`latest_draft` finds the family's newest draft (where a new tab
starts from) and :func:`prune_drafts` keeps the family to its newest few.
"""

from __future__ import annotations

import json
import sqlite3

from engine.storage.blobs import atomic
from engine.storage.db import now

MAX_DRAFT_BYTES = 64 * 1024
MAX_NAME = 100


def _family_where(family: str) -> tuple[str, tuple]:
    prefix = _check_name(family) + ":"
    return "(name = ? OR substr(name, 1, ?) = ?)", (family, len(prefix), prefix)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"a draft's name must be 1..{MAX_NAME} characters, got name={name!r}")
    return name


def save_draft(conn: sqlite3.Connection, name: str, values: dict) -> None:
    """Store ``values`` as the draft ``name`` (replacing the previous one). ValueError when they
    are not JSON (no NaN) or larger than ``MAX_DRAFT_BYTES``."""
    _check_name(name)
    if not isinstance(values, dict):
        raise ValueError(f"a draft is a dict of values, got {type(values).__name__}")
    try:
        text = json.dumps(values, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"draft {name!r} holds a value that is not plain JSON: {err}") from None
    if len(text.encode()) > MAX_DRAFT_BYTES:
        raise ValueError(f"draft {name!r} is {len(text.encode()):,} bytes of JSON, more than "
                         f"the {MAX_DRAFT_BYTES:,} a draft may hold")
    with atomic(conn):
        conn.execute(
            "INSERT INTO drafts (name, values_json, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET values_json = excluded.values_json,"
            " updated_at = excluded.updated_at",
            (name, text, now()),
        )


def load_draft(conn: sqlite3.Connection, name: str) -> dict | None:
    """The draft ``name``, or None when there is none (or it is not a JSON object)."""
    row = conn.execute("SELECT values_json FROM drafts WHERE name = ?",
                       (_check_name(name),)).fetchone()
    if row is None:
        return None
    try:
        values = json.loads(row[0])
    except ValueError:
        return None
    return values if isinstance(values, dict) else None


def delete_draft(conn: sqlite3.Connection, name: str) -> None:
    """Forget the draft ``name`` (nothing happens when there is none)."""
    with atomic(conn):
        conn.execute("DELETE FROM drafts WHERE name = ?", (_check_name(name),))


def latest_draft(conn: sqlite3.Connection, family: str) -> dict | None:
    """The newest readable draft of ``family`` (named ``family`` or ``family:<key>``), or None
    when it has none."""
    where, args = _family_where(family)
    rows = conn.execute(f"SELECT values_json FROM drafts WHERE {where}"
                        " ORDER BY updated_at DESC, rowid DESC", args)
    for (text,) in rows:
        try:
            values = json.loads(text)
        except ValueError:
            continue
        if isinstance(values, dict):
            return values
    return None


def prune_drafts(conn: sqlite3.Connection, family: str, keep: int) -> int:
    """Delete all but the ``keep`` newest drafts of ``family``; how many were deleted."""
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be an integer >= 1, got keep={keep!r}")
    where, args = _family_where(family)
    with atomic(conn):
        cur = conn.execute(
            f"DELETE FROM drafts WHERE {where} AND name NOT IN (SELECT name FROM drafts"
            f" WHERE {where} ORDER BY updated_at DESC, rowid DESC LIMIT ?)",
            (*args, *args, keep))
    return cur.rowcount
