"""Schema v3 (ask/tell): a version-2 database keeps its studies, which gain an objective taken
from their scheduler's old ``maximize`` flag; trials gain an origin; runners a process start."""

from __future__ import annotations

import json
import sqlite3

from engine.storage import schema
from engine.storage import studies as store
from engine.storage.db import connect


def _version_2(path) -> None:
    raw = sqlite3.connect(path)
    raw.executescript(schema._V1)
    raw.executescript(schema._V2)
    raw.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    for i, (kind, maximize) in enumerate([("successive_halving", False), ("full_budget", True)]):
        scheduler = {"kind": kind, "max_epochs": 9, "min_epochs": 1, "eta": 3}
        if kind == "full_budget":
            scheduler = {"kind": kind, "n_epochs": 4}
        scheduler["maximize"] = maximize
        raw.execute(
            "INSERT INTO studies (id, name, created_at, updated_at, space_json, sampler_json,"
            " scheduler_json, dataset_json, seed, n_trials, workers) VALUES"
            " (?, ?, 0, 0, '{}', '{\"kind\": \"random\"}', ?, '{\"kind\": \"moons\"}', 0, 3, 1)",
            (i + 1, f"old {i}", json.dumps(scheduler)),
        )
        raw.execute(
            "INSERT INTO trials (study_id, number, params_json, unit_json, created_at,"
            " updated_at) VALUES (?, 0, '{}', '[]', 0, 0)", (i + 1,))
    raw.commit()
    raw.close()


def test_a_version_2_database_moves_maximize_into_the_objective(tmp_path) -> None:
    path = tmp_path / "old.db"
    _version_2(path)
    conn = connect(path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION >= 3
    first, second = store.get_study(conn, 1), store.get_study(conn, 2)
    assert first["objective"] == {"metric": "val_loss"}
    assert second["objective"] == {"metric": "val_acc"}
    assert "maximize" not in first["scheduler"] and first["scheduler"]["eta"] == 3
    assert second["scheduler"] == {"kind": "full_budget", "n_epochs": 4}
    assert first["n_trials"] == 3 and first["epoch_budget"] is None and first["belief"] is None
    assert [t["origin"] for t in store.list_trials(conn, 1)] == ["sampler"]
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runners)")}
    assert "pid_started" in columns


def test_no_trial_budget_reads_as_none(tmp_path) -> None:
    conn = connect(tmp_path / "new.db")
    study_id = store.create_study(
        conn, name="s", space={}, sampler={"kind": "random"}, scheduler={"kind": "full_budget",
        "n_epochs": 2}, dataset={"kind": "moons"}, seed=0, n_trials=None, workers=1,
        epoch_budget=40, objective={"metric": "val_error"})
    study = store.get_study(conn, study_id)
    assert study["n_trials"] is None and study["epoch_budget"] == 40
    assert study["objective"] == {"metric": "val_error"}
