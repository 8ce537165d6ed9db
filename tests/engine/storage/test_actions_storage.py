"""The storage side of study actions: lookups by trial number, the budget, and the savepoint
that undoes an action's partial writes while the caller's transaction goes on."""

from __future__ import annotations

import pytest

from engine.storage import actions as store_actions
from engine.storage.blobs import NotFoundError
from engine.storage.db import connect, savepoint, transaction
from tests.engine.storage.test_studies import new


@pytest.fixture
def conn(db_path):
    return connect(db_path)


def test_trial_lookups_and_budget(conn):
    study_id = new(conn, n_trials=3)
    assert store_actions.trial_count(conn, study_id) == 3
    assert store_actions.trial_id_by_number(conn, study_id, 2) is not None
    assert store_actions.trial_id_by_number(conn, study_id, 3) is None
    assert store_actions.study_budget(conn, study_id) == (3, None)
    with pytest.raises(NotFoundError, match="study 999"):
        store_actions.study_budget(conn, 999)


def test_savepoint_undoes_only_the_writes_inside_it(conn):
    study_id = new(conn, n_trials=2)
    with transaction(conn):
        store_actions.update_study(conn, study_id, notes="kept")
        with pytest.raises(ValueError):
            with savepoint(conn, "study_action"):
                store_actions.update_study(conn, study_id, n_trials=50)
                raise ValueError("refused half-way")
        with savepoint(conn, "study_action"):
            store_actions.update_study(conn, study_id, name="renamed")
    row = conn.execute("SELECT notes, n_trials, name FROM studies WHERE id = ?",
                       (study_id,)).fetchone()
    assert tuple(row) == ("kept", 2, "renamed")
