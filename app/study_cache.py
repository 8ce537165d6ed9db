"""Reads of a study that many views and every one-second redraw need, cached per study version.

A study of 1,000 trials x 50 epochs has 50,000 metric rows: reading them is most of what the
curves view costs, and the page redraws every second while the study runs. The version is what
changes whenever a row does: the study's creation time (an id can be reused after a delete),
the trials it has and the epochs they trained (``get_study``'s ``counts`` and ``epochs_done``).
Values are shared between reruns and sessions: callers must not modify them.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from app.common import db_path
from engine import study as studies


def version(study: dict) -> tuple:
    """What identifies the rows of a study at one moment (see the module docstring)."""
    return (study["id"], study["created_at"], sum(study["counts"].values()),
            study["epochs_done"])


@st.cache_resource(max_entries=8, show_spinner=False)
def _metrics(path: str, key: tuple, _conn: sqlite3.Connection) -> dict[str, list]:
    return studies.study_metrics(_conn, key[0])


def study_metrics(conn: sqlite3.Connection, study: dict) -> dict[str, list]:
    """``studies.study_metrics`` of ``study`` (a ``get_study`` dict), read once per version."""
    return _metrics(str(db_path()), version(study), conn)
