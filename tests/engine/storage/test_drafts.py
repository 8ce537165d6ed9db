"""Drafts (schema v6): a form's inputs kept in SQLite, bounded, and a v5 database upgraded
without losing a row."""

from __future__ import annotations

import math
import sqlite3

import pytest

from engine.storage import schema
from engine.storage import studies as store
from engine.storage.db import connect, transaction
from engine.storage.drafts import (
    MAX_DRAFT_BYTES,
    delete_draft,
    latest_draft,
    load_draft,
    prune_drafts,
    save_draft,
)


def test_a_draft_round_trips_and_is_replaced(db_path):
    conn = connect(db_path)
    assert load_draft(conn, "designer") is None
    values = {"designer.n_trials": 30, "hp.l2.low": "1e-5", "hp.l2.search": True,
              "hp.activation.options": ["relu", "tanh"], "dataset_spec": {"kind": "digits"}}
    save_draft(conn, "designer", values)
    conn.close()
    conn = connect(db_path)  # another process, after a restart: still there
    assert load_draft(conn, "designer") == values
    save_draft(conn, "designer", {"designer.n_trials": 5})
    assert load_draft(conn, "designer") == {"designer.n_trials": 5}
    delete_draft(conn, "designer")
    assert load_draft(conn, "designer") is None


def test_a_family_of_drafts_one_a_tab_its_newest_and_pruned(db_path):
    conn = connect(db_path)
    assert latest_draft(conn, "designer") is None
    with transaction(conn):  # by hand, to fix the times: the old single draft is the oldest
        conn.execute("INSERT INTO drafts VALUES ('designer', '{\"v\": \"old\"}', 1),"
                     " ('designer:aaa', '{\"v\": \"a\"}', 2),"
                     " ('designer:bbb', '{', 3),"  # damaged: skipped
                     " ('designerx', '{\"v\": \"not of the family\"}', 9),"
                     " ('other:ccc', '{\"v\": \"another form\"}', 9)")
    assert latest_draft(conn, "designer") == {"v": "a"}
    save_draft(conn, "designer:ddd", {"v": "d"})  # now
    assert latest_draft(conn, "designer") == {"v": "d"}
    assert prune_drafts(conn, "designer", keep=2) == 2  # the two oldest of the family
    names = {r[0] for r in conn.execute("SELECT name FROM drafts")}
    assert names == {"designer:bbb", "designer:ddd", "designerx", "other:ccc"}
    with pytest.raises(ValueError, match="keep must be an integer >= 1, got keep=0"):
        prune_drafts(conn, "designer", keep=0)


def test_what_a_draft_refuses(db_path):
    conn = connect(db_path)
    with pytest.raises(ValueError, match="not plain JSON"):
        save_draft(conn, "designer", {"x": math.nan})
    with pytest.raises(ValueError, match="not plain JSON"):
        save_draft(conn, "designer", {"x": object()})
    with pytest.raises(ValueError, match=f"more than the {MAX_DRAFT_BYTES:,}"):
        save_draft(conn, "designer", {"x": "a" * MAX_DRAFT_BYTES})
    with pytest.raises(ValueError, match="a draft's name must be 1..100 characters, got name=''"):
        save_draft(conn, "", {})
    assert load_draft(conn, "designer") is None
    with transaction(conn):  # written by hand: not an object
        conn.execute("INSERT INTO drafts VALUES ('odd', '[1, 2]', 0), ('bad', '{', 0)")
    assert load_draft(conn, "odd") is None and load_draft(conn, "bad") is None


def test_a_version_5_database_gains_drafts_and_keeps_its_data(tmp_path):
    path = tmp_path / "v5.db"
    raw = sqlite3.connect(path)  # a v5 file as v5 made it: the migrations up to 5, no more
    raw.execute("PRAGMA journal_mode=WAL")
    for step in range(1, 6):
        migration = schema.MIGRATIONS[step]
        if callable(migration):
            migration(raw)
        else:
            schema._run_script(raw, migration)
    raw.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '5')")
    raw.execute(
        "INSERT INTO studies (name, created_at, updated_at, space_json, sampler_json,"
        " scheduler_json, dataset_json, seed, n_trials, workers, notes)"
        " VALUES ('old study', 1, 1, '{\"params\": {}, \"fixed\": {}}', '{\"kind\": \"random\"}',"
        " '{\"kind\": \"full_budget\", \"n_epochs\": 3}', '{\"kind\": \"moons\"}', 7, 4, 1,"
        " 'kept notes')")
    raw.commit()
    assert {r[0] for r in raw.execute("SELECT name FROM sqlite_master")} >= {"study_actions"}
    assert "drafts" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
    raw.close()
    conn = connect(path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION == 6
    (study,) = store.list_studies(conn)
    assert (study["name"], study["seed"], study["n_trials"], study["notes"]) == (
        "old study", 7, 4, "kept notes")
    save_draft(conn, "designer", {"designer.seed": 3})
    assert load_draft(conn, "designer") == {"designer.seed": 3}
