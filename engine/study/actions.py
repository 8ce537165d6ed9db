"""Hands on a study: add or clone a trial, extend the budget, change the space, stop a trial,
notes, names, archive, rank-by. The dashboard and the CLI call ``act``; ``engine.study.edits``
says what each kind does.

An action is checked at once (``ValueError`` naming the field, the value and what is valid),
then queued as a ``study_actions`` row. With a live runner, an intent ``"action"`` is posted in
the same transaction and the runner applies it between two looks at its workers; with none, the
caller applies it at once through the same code, holding the database's write lock (so no
runner can start in between). Applying an action and marking it applied is one transaction, so
a kill -9 at any moment loses none and applies none twice; an action that no longer checks out
when applied (the study moved on) is marked applied with its error.
"""

from __future__ import annotations

import logging
import sqlite3

from engine.storage import actions as store_actions
from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import Db, opened, retrying, savepoint, transaction
from engine.study import roundtrip
from engine.study.edits import KINDS, WORK_KINDS

log = logging.getLogger("engine.study.actions")
KINDS["return_session"] = (roundtrip.check_return_session, roundtrip.write_return_session)

ACTION_KINDS = tuple(KINDS)


def _kind(kind: str):
    if kind not in KINDS:
        raise ValueError(f"unknown study action {kind!r}; valid: {', '.join(ACTION_KINDS)}")
    return KINDS[kind]


def check(conn: sqlite3.Connection, study_id: int, kind: str, payload: dict | None) -> dict:
    """The normalised payload of an action on ``study_id``, or a ValueError."""
    check_fn, _ = _kind(kind)
    if payload is not None and not isinstance(payload, dict):
        raise ValueError(f"an action's payload must be a mapping, got {payload!r}")
    return check_fn(conn, store.get_study(conn, study_id), dict(payload or {}))


def _apply_one(conn: sqlite3.Connection, action: dict) -> dict:
    """Apply one queued action and mark it applied, in the caller's transaction; a payload that
    no longer checks out is rolled back to the savepoint and recorded as the action's error."""
    check_fn, write_fn = KINDS.get(action["kind"], (None, None))
    try:
        with savepoint(conn, "study_action"):
            if check_fn is None:
                raise ValueError(f"unknown study action {action['kind']!r}")
            study = store.get_study(conn, action["study_id"])
            result = write_fn(conn, study, check_fn(conn, study, action["payload"]))
    except (ValueError, LookupError) as err:
        log.warning("study %s: action %s refused: %s", action["study_id"], action["kind"], err)
        store_actions.mark_applied(conn, action["id"], error=str(err))
        return {**action, "error": str(err), "result": None}
    store_actions.mark_applied(conn, action["id"], result=result)
    return {**action, "result": result, "error": ""}


def apply_pending(conn: sqlite3.Connection, study_id: int) -> list[dict]:
    """Apply the study's queued actions in order, each in a transaction of its own (retried
    past locks held elsewhere); the actions applied, with their ``result`` or ``error``."""
    applied = []
    while True:
        def one() -> dict | None:
            with transaction(conn):
                action = store_actions.next_pending_action(conn, study_id)
                return None if action is None else _apply_one(conn, action)

        done = retrying(one, what=f"study {study_id}: apply an action")
        if done is None:
            return applied
        applied.append(done)


def act(db: Db, study_id: int, kind: str, payload: dict | None = None, *,
        start: bool = False) -> dict:
    """Check and queue an action on ``study_id``; apply it now when no runner is alive.

    Returns the action ``{"id", "kind", "payload", "applied_at", "result", "error", "queued"}``:
    ``queued`` True when a live runner will apply it (``applied_at`` None until it has).
    ``start=True``: for work added to a study with no live runner, start its runner to train it.
    """
    with opened(db) as conn:
        normalised = check(conn, study_id, kind, payload)

        def post() -> tuple[int, bool]:
            with transaction(conn):
                action_id = store_actions.queue_action(conn, study_id, kind, normalised)
                if runners.runner_alive(conn, "study", study_id):
                    runners.post_intent(conn, "study", study_id, "action", {"id": action_id})
                    return action_id, True
                # No runner: apply it (and anything left over) while holding the write lock,
                # so no runner starts from a history without it.
                while (pending := store_actions.next_pending_action(conn, study_id)) is not None:
                    _apply_one(conn, pending)
                return action_id, False

        action_id, queued = retrying(post, what=f"study {study_id}: queue {kind}")
        action = {**store_actions.get_action(conn, action_id), "queued": queued}
        if action["error"]:
            raise ValueError(action["error"])
        if start and not queued and kind in WORK_KINDS:
            from engine.study.facade import resume_study

            resume_study(conn, study_id)
        return action


def wait_applied(db: Db, action_id: int, timeout: float = 10.0) -> dict:
    """Poll until a queued action is applied (or ``timeout`` s pass); the action."""
    import time

    with opened(db) as conn:
        deadline = time.monotonic() + timeout
        while True:
            action = store_actions.get_action(conn, action_id)
            if action["applied_at"] is not None or time.monotonic() > deadline:
                return action
            time.sleep(0.05)


def list_actions(db: Db, study_id: int) -> list[dict]:
    """The study's actions, oldest first (what was asked, when, and what became of it)."""
    with opened(db) as conn:
        return store_actions.list_actions(conn, study_id)


def remove_study(db: Db, study_id: int, *, confirm: str | None = None) -> None:
    """Delete a study with its trials, metrics, checkpoints and actions. ``confirm`` must be
    the study's name (the dashboard's confirmation, the CLI's ``--yes``); its runner must be
    stopped first."""
    with opened(db) as conn:
        study = store.get_study(conn, study_id)
        if confirm != study["name"]:
            raise ValueError(f"to delete study {study_id}, confirm with its name "
                             f"{study['name']!r}, got {confirm!r}")
        if study["runner_alive"]:
            raise ValueError(f"study {study_id} is running; stop it before deleting it")
        retrying(lambda: store.delete_study(conn, study_id),
                 what=f"study {study_id}: delete")
