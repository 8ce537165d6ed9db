"""Study storage: round trips, curve integrity, checkpoints verified, uploads, fast listing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.storage import blobs
from engine.storage import studies as store
from engine.storage.db import connect, transaction


@pytest.fixture
def conn(db_path):
    return connect(db_path)


def new(conn, n_trials=2, **extra) -> int:
    study_id = store.create_study(
        conn, name="s", space={"params": {}, "fixed": {"n_epochs": 3}}, sampler={"kind": "random"},
        scheduler={"kind": "full_budget", "n_epochs": 3}, dataset={"kind": "moons"}, seed=1,
        n_trials=n_trials, workers=2, **extra,
    )
    store.add_trials(conn, study_id, [
        {"params": {"learning_rate": 0.1 * (i + 1)}, "unit": [i / 10], "target_epochs": 3}
        for i in range(n_trials)
    ])
    return study_id


def epoch(e, acc=0.5, loss=1.0):
    return {"epoch": e, "train_loss": loss, "train_acc": acc, "val_loss": loss, "val_acc": acc,
            "learning_rate": 0.1, "seconds": 0.25}


def test_study_round_trip(conn):
    study_id = new(conn, parent_id=None, box={"unit": {"lr": [0.1, 0.5]}, "values": {}})
    study = store.get_study(conn, study_id)
    assert study["scheduler"] == {"kind": "full_budget", "n_epochs": 3}
    assert study["box"]["unit"]["lr"] == [0.1, 0.5]
    assert study["status"] == study["stored_status"] == "queued"
    assert study["counts"]["waiting"] == 2 and study["best_val_acc"] is None
    trials = store.list_trials(conn, study_id)
    assert [t["number"] for t in trials] == [0, 1]
    assert trials[1]["params"] == {"learning_rate": 0.2} and trials[1]["unit"] == [0.1]
    assert store.get_trial(conn, trials[0]["id"])["target_epochs"] == 3
    with pytest.raises(store.NotFoundError, match="id=999"):
        store.get_study(conn, 999)


def test_curves_must_continue_exactly(conn):
    study_id = new(conn)
    trial_id = store.list_trials(conn, study_id)[0]["id"]
    assert store.record_epochs(conn, trial_id, [epoch(1, 0.6, 0.9), epoch(2, 0.8, 0.5)]) == 2
    with pytest.raises(ValueError, match="epochs 3..3, got \\[2\\]"):
        store.record_epochs(conn, trial_id, [epoch(2)])
    with pytest.raises(ValueError, match="epochs 3..3, got \\[4\\]"):
        store.record_epochs(conn, trial_id, [epoch(4)])
    with pytest.raises(ValueError, match="train_loss=nan is not finite"):
        store.record_epochs(conn, trial_id, [epoch(3, loss=math.nan)])
    trial = store.get_trial(conn, trial_id)
    assert trial["epochs_done"] == 2 and trial["best_val_acc"] == 0.8
    assert trial["best_val_loss"] == 0.5 and trial["last_val_acc"] == 0.8
    assert trial["seconds"] == pytest.approx(0.5)
    assert [m["epoch"] for m in store.trial_metrics(conn, trial_id)] == [1, 2]


def test_record_segment_is_one_transaction(conn):
    study_id = new(conn)
    trial_id = store.list_trials(conn, study_id)[0]["id"]
    store.record_segment(conn, trial_id, [epoch(1)], b"first", state="running")
    with pytest.raises(blobs.ChecksumError):
        store.record_segment(conn, trial_id, [epoch(2)], b"second", sha256="0" * 64)
    # Nothing of the failed segment landed: no epoch 2, still the first checkpoint.
    assert store.get_trial(conn, trial_id)["epochs_done"] == 1
    assert store.trial_checkpoint(conn, trial_id) == b"first"
    store.record_segment(conn, trial_id, [epoch(2)], b"second",
                         sha256=blobs.sha256_hex(b"second"), state="complete")
    assert store.trial_checkpoint(conn, trial_id) == b"second"
    assert store.get_trial(conn, trial_id)["state"] == "complete"
    assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 1


def test_damaged_checkpoint_is_refused(conn):
    study_id = new(conn)
    trial_id = store.list_trials(conn, study_id)[0]["id"]
    store.record_segment(conn, trial_id, [epoch(1)], b"weights")
    with transaction(conn):
        conn.execute("UPDATE checkpoints SET blob = ?", (b"weightz",))
    with pytest.raises(blobs.ChecksumError, match="damaged"):
        store.trial_checkpoint(conn, trial_id)


@settings(max_examples=25, deadline=None)
@given(blob=st.binary(max_size=2000))
def test_checkpoint_round_trip_is_exact(tmp_path_factory, blob):
    conn = connect(tmp_path_factory.mktemp("db") / "c.db")
    checkpoint_id = blobs.save_checkpoint(conn, blob, epoch=1, sha256=blobs.sha256_hex(blob))
    assert blobs.load_checkpoint(conn, checkpoint_id) == blob


def test_uploads_are_stored_once_by_hash(conn):
    text = "x,y,label\n1,2,a\n3,4,b\n"
    digest = blobs.save_upload(conn, "a.csv", text)
    assert blobs.save_upload(conn, "again.csv", text) == digest
    assert store.get_upload(conn, digest) == text
    assert [u["name"] for u in blobs.list_uploads(conn)] == ["a.csv"]
    with pytest.raises(blobs.NotFoundError, match="upload the CSV again"):
        blobs.get_upload(conn, "f" * 64)


def test_states_are_checked(conn):
    study_id = new(conn)
    trial_id = store.list_trials(conn, study_id)[0]["id"]
    with pytest.raises(ValueError, match="state must be one of"):
        store.set_trial_state(conn, trial_id, "sleeping")
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_study_status(conn, study_id, "paused")
    store.set_trial_state(conn, trial_id, "failed", error="Traceback ...", attempts=2)
    trial = store.get_trial(conn, trial_id)
    assert (trial["state"], trial["error"], trial["attempts"]) == ("failed", "Traceback ...", 2)
    store.set_study_status(conn, study_id, "complete", "done")
    study = store.get_study(conn, study_id)
    assert study["finished_at"] is not None and study["message"] == "done"


def test_delete_study_removes_everything(conn):
    keep, gone = new(conn), new(conn)
    for trial in store.list_trials(conn, gone):
        store.record_segment(conn, trial["id"], [epoch(1)], b"w")
    store.delete_study(conn, gone)
    assert [s["id"] for s in store.list_studies(conn)] == [keep]
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


def test_listing_trials_and_metrics_as_columns(conn):
    """What a page reads; how fast it reads 1,000 x 50 is benchmarks/storage_listing.py."""
    n_trials, n_epochs = 40, 50
    study_id = new(conn, n_trials=n_trials)
    ids = [t["id"] for t in store.list_trials(conn, study_id)]
    with transaction(conn):
        conn.executemany(
            "INSERT INTO metrics (trial_id, epoch, train_loss, train_acc, val_loss, val_acc,"
            " learning_rate, seconds) VALUES (?, ?, 0.5, 0.5, 0.5, 0.5, 0.1, 0.01)",
            [(i, e) for i in ids for e in range(1, n_epochs + 1)],
        )
        conn.execute("UPDATE trials SET epochs_done = 50, best_val_acc = 0.5")
    trials = store.list_trials(conn, study_id)
    columns = store.study_metrics(conn, study_id)
    studies = store.list_studies(conn)
    assert len(trials) == n_trials and len(columns["epoch"]) == n_trials * n_epochs
    assert set(columns) == set(store.METRIC_COLUMNS)
    assert columns["epoch"][:3] == [1, 2, 3] and columns["number"][50] == 1
    assert studies[0]["epochs_done"] == n_trials * n_epochs
