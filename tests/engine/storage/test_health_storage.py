"""Network health in storage (schema v4): cleaned and bounded, stored with each epoch, the
trial's last health and flags refreshed with every segment, read back and exported."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3

import pytest

from engine.diagnosis import diagnose
from engine.nn import ModelSpec, TrainConfig, new_state, train_segment
from engine.nn import health as nn_health
from engine.storage import health, schema
from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.export import export_metrics_csv, export_trials_csv
from tests.engine.nn.conftest import blobs


def test_field_names_agree_with_the_network_health_module():
    assert health.LAYER_FIELDS == nn_health.LAYER_FIELDS
    assert health.SUMMARY_FIELDS == nn_health.SUMMARY_FIELDS


def test_clean_keeps_known_finite_numbers_rounded():
    raw = {"grad_norm": 1234.56789, "grad_norm_1": math.inf, "dead_2": 0.5, "rows": 128,
           "update_ratio_1": None, "max_prob": math.nan, "confident_wrong": True,
           "bogus": 1.0, "dead_x": 1.0, "pre_mean_0": 1.0,
           f"pre_std_{health.MAX_LAYERS}": 2.0, f"pre_std_{health.MAX_LAYERS + 1}": 2.0}
    assert health.clean_health(raw) == {"grad_norm": 1235.0, "dead_2": 0.5, "rows": 128.0,
                                        f"pre_std_{health.MAX_LAYERS}": 2.0}
    assert health.clean_health({"grad_norm": math.nan}) is None
    assert health.clean_health(None) is None and health.dump_health({}) is None
    text = health.dump_health({"grad_norm": 2.0 ** 0.5})
    assert text == '{"grad_norm":1.414}' and health.load_health(text) == {"grad_norm": 1.414}


def test_the_deepest_model_stays_bounded():
    spec = ModelSpec(2, (4,) * 16, 3, batch_norm=True)
    state = new_state(spec, 0)
    data = blobs(64, 16, 2, 3, seed=1)
    [row] = train_segment(state, TrainConfig(batch_size=16), data, 1, health_every=1).metrics
    text = health.dump_health(row["health"])
    assert len(json.loads(text)) <= 8 * 17 + 6 and len(text) < 4000
    assert health.health_columns([row["health"]])[:3] == ["grad_norm", "update_ratio", "dead"]


def _study(conn) -> tuple[int, int]:
    study_id = store.create_study(
        conn, name="s", space={"params": {}, "fixed": {"n_epochs": 4}}, sampler={"kind": "random"},
        scheduler={"kind": "full_budget", "n_epochs": 4}, dataset={"kind": "blobs"}, seed=1,
        n_trials=1, workers=1)
    [trial_id] = store.add_trials(conn, study_id, [{"params": {}, "unit": [], "target_epochs": 4}])
    return study_id, trial_id


def test_health_is_stored_with_its_epoch_and_flags_refresh(db_path):
    conn = connect(db_path)
    study_id, trial_id = _study(conn)
    spec = ModelSpec(4, (16, 16), 3, batch_norm=False)
    config = TrainConfig(optimizer="momentum", learning_rate=1.0, batch_size=8)
    result = train_segment(new_state(spec, 0), config, blobs(120, 40, 4, 3, seed=5), 4,
                           health_every=2)
    metrics = result.metrics
    metrics[1]["health"]["pre_mean_1"] = math.inf  # not stored, the epoch still is
    store.record_segment(conn, trial_id, metrics[:2], b"c1")
    trial = store.get_trial(conn, trial_id)
    assert trial["health"] == health.clean_health(metrics[1]["health"])
    assert "pre_mean_1" not in trial["health"]
    stored = store.trial_metrics(conn, trial_id)
    assert "health" not in stored[0] and stored[1]["health"] == trial["health"]
    assert trial["flags"] == diagnose(stored) and trial["flags"][0]["epoch"] == 2
    assert trial["flags"][0]["kind"] == "exploding_gradients"
    store.record_segment(conn, trial_id, metrics[2:], b"c2")
    trial = store.get_trial(conn, trial_id)
    assert trial["health"] == health.clean_health(metrics[3]["health"])
    assert trial["flags"] == diagnose(store.trial_metrics(conn, trial_id))
    assert trial["flags"][0]["text"].startswith("exploding gradients from epoch 2")
    columns = store.study_metrics(conn, study_id, health=True)
    assert [h is None for h in columns["health"]] == [True, False, True, False]
    assert "health" not in store.study_metrics(conn, study_id)


def test_exports_carry_health_and_flags(db_path):
    conn = connect(db_path)
    study_id, trial_id = _study(conn)
    rows = [{"epoch": e, "train_loss": 1.0, "train_acc": 0.3, "val_loss": 1.0, "val_acc": 0.3,
             "learning_rate": 0.1, "seconds": 0.1} for e in (1, 2, 3, 4, 5)]
    rows[4]["health"] = {"grad_norm": 5e3, "grad_norm_1": 4e3, "dead_1": 0.25}
    store.record_segment(conn, trial_id, rows, None)
    metrics = list(csv.DictReader(io.StringIO(export_metrics_csv(conn, study_id))))
    assert list(metrics[0])[-3:] == ["health_grad_norm", "health_grad_norm_1", "health_dead_1"]
    assert metrics[0]["health_grad_norm"] == "" and float(metrics[4]["health_dead_1"]) == 0.25
    [trial] = csv.DictReader(io.StringIO(export_trials_csv(conn, study_id)))
    assert trial["flags"] == ("exploding gradients from epoch 5 (norm 5e3); "
                              "no learning: loss flat at 1 for 5 epochs")


def test_a_version_3_database_gains_the_health_columns(tmp_path):
    path = tmp_path / "v3.db"
    conn = connect(path)
    study_id, trial_id = _study(conn)
    store.record_epochs(conn, trial_id, [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.3,
                                          "val_loss": 1.0, "val_acc": 0.3,
                                          "learning_rate": 0.1, "seconds": 0.1}])
    conn.close()
    raw = sqlite3.connect(path)  # take it back to version 3 (SQLite >= 3.35 drops columns)
    for table, column in [("metrics", "health_json"), ("session_nodes", "health_json"),
                          ("trials", "health_json"), ("trials", "flags_json")]:
        raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    conn = connect(path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION >= 4
    trial = store.get_trial(conn, trial_id)
    assert trial["health"] is None and trial["flags"] == []
    assert "health" not in store.trial_metrics(conn, trial_id)[0]


@pytest.mark.parametrize("value", [math.nan, -math.inf, "x", [1.0]])
def test_nothing_non_finite_or_odd_is_stored(db_path, value):
    conn = connect(db_path)
    _, trial_id = _study(conn)
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.3, "val_loss": 1.0, "val_acc": 0.3,
           "learning_rate": 0.1, "seconds": 0.1, "health": {"grad_norm": value}}
    store.record_epochs(conn, trial_id, [row])
    assert conn.execute("SELECT health_json FROM metrics").fetchone()[0] is None
