"""The search designer's draft: its inputs and the dataset chosen for it, kept in SQLite
(``engine.storage.drafts``) so a browser refresh, a second visit or a restart of the server
finds them as they were.

Each browser tab has a draft of its own, ``"designer:<key>"``: the key is made on the tab's
first visit and kept in the designer's URL (``?draft=<key>``), so a refresh of that tab finds
its own design and two tabs never overwrite each other's. A tab that comes without a key of its
own (a new tab, a bookmark, a restart) starts from a copy of the newest designer draft (also
the one ``"designer"`` draft kept before drafts were per tab) and goes on as its own.

The router calls :func:`restore_draft` once per browser session, before the page is drawn
(each value checked by ``app.designer_rows.draft_field_ok``, the dataset by building its spec;
a value that does not fit is left out), and :func:`remember_draft` after every run (a write
only when something changed; the newest :data:`KEEP` tab drafts are kept).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
from typing import Any

import streamlit as st

from app.designer_rows import WIDGET_DEFAULTS, draft_field_ok
from engine.data import DatasetSpec
from engine.storage.blobs import get_upload
from engine.storage.drafts import (
    delete_draft,
    latest_draft,
    load_draft,
    prune_drafts,
    save_draft,
)

log = logging.getLogger("panda_caviar.app")

NAME = "designer"  # the family: one "designer:<key>" a tab (and the old single draft)
QUERY = "draft"  # the designer's URL carries the tab's key: ?draft=<key>
KEEP = 20  # tab drafts kept (the newest)
_KEY_SHAPE = re.compile(r"[0-9a-z]{6,32}")
_KEY = "_draft.key"
PREFIXES = ("designer.", "hp.")
DATASET_KEY = "dataset_spec"
NOT_KEPT = ("designer.parent",)  # a study row picked in a box: chosen again, not restored
_RESTORED = "_draft.restored"
_SAVED = "_draft.saved"


def dataset_ok(conn: sqlite3.Connection, spec: Any) -> bool:
    """A dataset spec that still describes a dataset (an upload still stored)."""
    try:
        parsed = DatasetSpec.from_dict(spec)
        if parsed.kind == "csv":
            get_upload(conn, parsed.csv_sha256)
        return True
    except (ValueError, LookupError, TypeError, AttributeError):
        return False


def draft_values() -> dict:
    """What this session's designer holds now: its widget values and the chosen dataset."""
    values = {}
    for key in list(st.session_state.keys()):
        if (isinstance(key, str) and key.startswith(PREFIXES) and key not in NOT_KEPT
                and draft_field_ok(key, st.session_state[key])):
            values[key] = st.session_state[key]
    if DATASET_KEY in st.session_state:
        values[DATASET_KEY] = st.session_state[DATASET_KEY]
    return values


def tab_key() -> str:
    """This tab's draft key: the one in the URL when it has the right shape (a refresh), else
    a new random one; fixed for the session from then on."""
    key = st.session_state.get(_KEY)
    if key is None:
        raw = st.query_params.get(QUERY)
        key = raw if isinstance(raw, str) and _KEY_SHAPE.fullmatch(raw) else secrets.token_hex(6)
        st.session_state[_KEY] = key
    return key


def draft_name() -> str:
    """The name of this tab's draft in ``engine.storage.drafts``."""
    return f"{NAME}:{tab_key()}"


def keep_key_in_url() -> None:
    """On the designer page: put this tab's draft key in the URL (a refresh then finds it)."""
    if st.query_params.get(QUERY) != tab_key():
        st.query_params[QUERY] = tab_key()


def restore_draft(conn: sqlite3.Connection) -> None:
    """Once per session: put this tab's saved draft (else a copy of the newest one) back into
    session state, before any widget is drawn, so each widget starts from its saved value."""
    if st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    draft = load_draft(conn, draft_name())
    if draft is None:
        draft = latest_draft(conn, NAME) or {}
    for key, value in draft.items():
        if key in st.session_state:
            continue
        if key == DATASET_KEY:
            if dataset_ok(conn, value):
                st.session_state[key] = value
        elif key.startswith(PREFIXES) and key not in NOT_KEPT and draft_field_ok(key, value):
            st.session_state[key] = value
    st.session_state[_SAVED] = _fingerprint(draft_values())


def remember_draft(conn: sqlite3.Connection) -> None:
    """Save the draft when the designer's values changed since the last save."""
    values = draft_values()
    text = _fingerprint(values)
    if text == st.session_state.get(_SAVED):
        return
    try:
        save_draft(conn, draft_name(), values)
        prune_drafts(conn, NAME, KEEP)
    except (ValueError, sqlite3.Error):  # a draft is a convenience: never break the page
        log.exception("could not save the designer's draft")
        return
    st.session_state[_SAVED] = text


def forget_draft(conn: sqlite3.Connection) -> None:
    """Start the designer over: this tab's draft (and the old single one) are dropped and
    this session's designer values go back to their defaults (the chosen dataset stays).

    A widget drawn with ``app.designer_rows.keyed`` is set to its default: one whose key were only
    deleted would go on showing what the browser held, and send it back at the next click."""
    delete_draft(conn, draft_name())
    delete_draft(conn, NAME)
    defaults = st.session_state.get(WIDGET_DEFAULTS, {})
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(PREFIXES):
            if key in defaults:
                st.session_state[key] = defaults[key]
            else:
                del st.session_state[key]
    st.session_state[_SAVED] = _fingerprint(draft_values())


def _fingerprint(values: dict) -> str:
    return json.dumps(values, sort_keys=True, default=str)
