"""Shared UI helpers for every page: the database, friendly errors, query params, the sidebar.

- The database path comes from ``$PANDA_CAVIAR_DB`` (else ``./data/panda_caviar.db``), exactly as
  the engine and the runners resolve it, so the page and its runners share one file.
- ``get_conn()`` hands out one SQLite connection per thread from a ``st.cache_resource`` pool
  (Streamlit runs scripts on several threads; an sqlite3 connection belongs to its thread).
- ``friendly_errors("load the study")`` is a context manager (and decorator): a failure inside
  shows one clear ``st.error`` and the rest of the page keeps rendering; the traceback goes to
  the server log, never to the browser.
- Query-param helpers keep "what is being watched" in the URL, so a refresh finds it again.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from app.labels import menu_words
from app.live import live_part
from engine.storage.db import connect, default_path

log = logging.getLogger("panda_caviar.app")

# Page files, relative to the entry script (what st.switch_page and st.page_link take).
PAGES = {
    "overview": "app_pages/overview.py",
    "data": "app_pages/data.py",
    "designer": "app_pages/designer.py",
    "studies": "app_pages/studies.py",
    "compare": "app_pages/compare.py",
    "babysit": "app_pages/babysit.py",
    "inspector": "app_pages/inspector.py",
}

# What a person sees for each derived study / session status.
STATUS_BADGES = {
    "queued": "○ queued",
    "running": "● running",
    "stopping": "◐ stopping",
    "stopped": "■ stopped",
    "interrupted": "⚠ interrupted",
    "complete": "✓ done",
    "failed": "✗ failed",
    "idle": "○ idle",
    "paused": "■ paused",
    "diverged": "✗ diverged",
}
ACTIVE_STATUSES = ("queued", "running", "stopping")
# A description beside its one action button (st.columns): at 1,024 px with the sidebar open
# [3, 1] cut the buttons' labels ("▶ Run the demo…"), [3, 2] "Run random vs zoom vs GP"
TEXT_AND_BUTTON = [4, 3]
# A listed study or session (overview): name, status, figures, Open, Resume; [3, 2, 2, 1, 1]
# cut "Open" at 1,024 px
LIST_ROW = [3, 2, 2, 1.4, 1.8]


def status_badge(status: str) -> str:
    """A short label with an emoji for a study or session status."""
    return STATUS_BADGES.get(status, status)


def db_path() -> Path:
    """The database file every page, runner and CLI call of this server uses (absolute)."""
    return default_path().resolve()


class ConnectionPool:
    """One connection per thread to one database file (created on first use in a thread)."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn


@st.cache_resource(show_spinner=False)
def _pool(path: str) -> ConnectionPool:
    return ConnectionPool(path)


def get_conn() -> sqlite3.Connection:
    """This thread's connection to :func:`db_path` (WAL, busy timeout, migrated).

    Call it where the connection is used: a fragment's timed reruns and download callbacks run
    on other threads than the script run that drew the page, and a connection is per thread.
    """
    return _pool(str(db_path())).get()


# What Markdown (and Streamlit's extensions: :red[...], $math$, ~~strike~~) turns into links,
# images, emphasis or code ('[' opens every link and image); other punctuation stays as
# typed. An underscore inside a word (learning_rate) emphasises nothing, so only one at a
# word's edge is escaped; a '#' only makes a heading at the start. A bare URL (http://x,
# www.x) would be auto-linked by GitHub-flavoured Markdown: the colon of http(s):// and the
# dot after "www" are escaped, which shows the same characters but breaks the autolink
# (GFM links no other scheme, so tcp://host stays as typed).
_MARKDOWN_SPECIALS = re.compile(
    r"([\\`*\[~$])|(?<!\w)(_)|(_)(?!\w)|^(#)"
    r"|(?<=\bhttp)(:)(?=//)|(?<=\bhttps)(:)(?=//)|(?<=\bwww)(\.)",
    re.IGNORECASE,
)


def plain(text: Any) -> str:
    """User text (a study or session name, a CSV cell inside a message) made safe to put in
    Markdown: the marks that make links, images, emphasis or code are backslash-escaped, so
    ``![t](http://x)`` shows as those characters and fetches nothing and ``**`` stays two
    stars; line breaks become spaces."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIALS.sub(lambda m: "\\" + m.group(0), flat)


def explain(err: BaseException) -> str:
    """One sentence for a person: the engine's own message for the errors it raises on purpose
    (ValueError, LookupError: they name the field and the value, in the menus' words:
    ``app.labels.menu_words``), the type otherwise."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, ValueError | LookupError):
        return menu_words(text)
    if isinstance(err, sqlite3.OperationalError):
        return f"the database is busy or unreadable ({text}); try again in a moment"
    return f"{type(err).__name__}: {text}"


@contextmanager
def friendly_errors(what: str) -> Iterator[None]:
    """Show ``Could not <what>: <reason>`` instead of a traceback; the page goes on after the
    ``with`` block. Streamlit's own control flow (rerun, stop, switch_page) passes through: it
    derives from BaseException, not Exception."""
    try:
        yield
    except Exception as err:  # the point: nothing reaches the browser as a traceback
        log.exception("error while trying to %s", what)
        st.error(f"Could not {what}: {plain(explain(err))}", icon=":material/error:")


def query_int(name: str) -> int | None:
    """An integer query parameter, or None when absent or not an integer."""
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def query_ints(name: str) -> list[int]:
    """A comma-separated list of integers (``?studies=3,5``); bad items are skipped."""
    raw = st.query_params.get(name) or ""
    out = []
    for item in str(raw).split(","):
        item = item.strip()
        if item.isdigit():
            out.append(int(item))
    return out


def set_query(**values: Any) -> None:
    """Set (or, with None, remove) query parameters; lists are joined with commas."""
    for name, value in values.items():
        if value is None:
            st.query_params.pop(name, None)
        elif isinstance(value, list | tuple):
            st.query_params[name] = ",".join(str(v) for v in value)
        else:
            st.query_params[name] = str(value)


def open_study(study_id: int) -> None:
    """Go to the live study page showing ``study_id`` (the id lands in the URL)."""
    st.switch_page(PAGES["studies"], query_params={"study": str(study_id)})


def list_sessions_safe(conn: sqlite3.Connection) -> list[dict]:
    """Babysitting sessions, or [] while engine.babysit is not importable yet."""
    try:
        from engine import babysit

        return babysit.list_sessions(conn)
    except ImportError:
        return []


def trials_total(study: dict) -> int:
    """The study's trial budget, or (a budget in epochs only) the trials it has asked so far."""
    return study["n_trials"] or sum(study["counts"].values())


LIVE_EVERY = 1.0  # seconds between the live views' reads of SQLite while something runs


def running_now(conn: sqlite3.Connection) -> tuple[list[dict], list[dict]]:
    """What is active right now: (studies queued/running/stopping, sessions running). A study
    queued with no live runner (it never started) is listed, but only :func:`live_every`
    decides whether that is worth polling for."""
    from engine import study as studies

    active = [s for s in studies.list_studies(conn) if s["status"] in ACTIVE_STATUSES]
    sessions = [s for s in list_sessions_safe(conn) if s.get("status") == "running"]
    return active, sessions


def live_every(active: list[dict], sessions: list[dict]) -> float | None:
    """How often a live view re-reads the database: every :data:`LIVE_EVERY` seconds at most
    (``app.live`` slows it down on a busy machine) while a runner is alive on an active study
    or a running session, else None (no timer: a stalled queued study or a session whose
    runner died would otherwise be polled forever)."""
    alive = any(s.get("runner_alive") for s in [*active, *sessions])
    return LIVE_EVERY if alive else None


def live_fragment(body, every: float | None) -> None:
    """Run ``body(was_live)`` as a live part (``app.live.live_part``): re-run while ``every``
    is not None, every paced interval of at least ``every`` seconds (None: drawn once). The
    body calls :func:`end_live` when what it watched has stopped, so the page is redrawn once
    without the timer."""
    live = every is not None
    live_part(body.__name__, body, live, live=live, floor=every or LIVE_EVERY)


def end_live(was_live: bool, live_now: bool) -> None:
    """Inside a live fragment: when it was polling and nothing runs any more, redraw the
    whole app once (every view then shows the final state and no timer is left running)."""
    if was_live and not live_now:
        st.rerun(scope="app")


def _sidebar_body(was_live: bool) -> None:
    with friendly_errors("read what is running"):
        active, sessions = running_now(get_conn())
        if not active and not sessions:
            st.caption("Nothing is running.")
        # the figures in a caption under each link: in the link they came after the name, and
        # the sidebar (244 px of text) cut "Demo: random search on digits · (0/48 trials)"
        for study in active[:8]:
            done = sum(study["counts"][k] for k in ("complete", "pruned", "diverged", "failed",
                                                    "cancelled"))
            st.page_link(
                PAGES["studies"], label=plain(study["name"]), icon=":material/play_circle:",
                query_params={"study": str(study["id"])},
            )
            st.caption(f"{done}/{trials_total(study)} trials")
        for session in sessions[:8]:
            st.page_link(
                PAGES["babysit"], label=plain(session["name"]), icon=":material/child_care:",
                query_params={"session": str(session["id"])},
            )
            st.caption(f"epoch {session.get('head_epoch', '?')}")
        end_live(was_live, live_every(active, sessions) is not None)


def sidebar_status() -> None:
    """The sidebar: which database this server uses, and what is running in it right now,
    re-read every second while a runner works (a fragment: only the sidebar redraws)."""
    with st.sidebar:
        st.caption(f"Database: `{db_path()}`")
        every = None
        with friendly_errors("read what is running"):
            every = live_every(*running_now(get_conn()))
        live_fragment(_sidebar_body, every)
