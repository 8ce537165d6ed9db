"""PBT lineage in storage: the v1 -> v2 migration, exploits in one transaction, shared
checkpoints that outlive the donor's next segment, and clear refusals."""

from __future__ import annotations

import json
import sqlite3

import pytest

from engine.storage import schema
from engine.storage import studies as store
from engine.storage.db import connect


@pytest.fixture
def conn(db_path):
    return connect(db_path)


def new(conn, n_trials=3) -> tuple[int, list[int]]:
    study_id = store.create_study(
        conn, name="pbt", space={"params": {}, "fixed": {}}, sampler={"kind": "random"},
        scheduler={"kind": "pbt", "interval": 2, "n_rounds": 2}, dataset={"kind": "moons"},
        seed=1, n_trials=n_trials, workers=2,
    )
    ids = store.add_trials(conn, study_id, [
        {"params": {"learning_rate": 0.1 * (i + 1)}, "unit": [i / 10], "target_epochs": 4}
        for i in range(n_trials)
    ])
    return study_id, ids


def epochs(first, last, acc=0.5):
    return [{"epoch": e, "train_loss": 1.0, "train_acc": acc, "val_loss": 1.0, "val_acc": acc,
             "learning_rate": 0.1, "seconds": 0.1} for e in range(first, last + 1)]


def test_a_version_1_database_gains_the_lineage_table(db_path):
    raw = sqlite3.connect(db_path)
    raw.executescript(schema._V1)
    raw.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    raw.execute("INSERT INTO uploads VALUES ('abc', 'kept.csv', 'x,y', 3, 0.0)")
    raw.commit()
    raw.close()
    conn = connect(db_path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    columns = [r["name"] for r in conn.execute("PRAGMA table_info(trial_lineage)")]
    assert columns == ["id", "trial_id", "epoch", "donor_trial_id", "params_json", "created_at"]
    assert conn.execute("SELECT name FROM uploads").fetchone()[0] == "kept.csv"  # data kept
    study_id, ids = new(conn, 2)  # and the migrated database works
    store.record_segment(conn, ids[0], epochs(1, 2), b"a")
    store.record_segment(conn, ids[1], epochs(1, 2), b"b")
    store.record_exploit(conn, ids[0], ids[1], 2, {"learning_rate": 0.3})
    assert len(store.trial_lineage(conn, study_id)) == 1


def test_exploit_shares_the_donors_checkpoint_and_records_lineage(conn):
    study_id, (recipient, donor, other) = new(conn)
    for trial_id, blob in ((recipient, b"weak"), (donor, b"strong"), (other, b"other")):
        store.record_segment(conn, trial_id, epochs(1, 2), blob)
    n_blobs = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    params = {"learning_rate": 0.24}
    lineage_id = store.record_exploit(conn, recipient, donor, 2, params)
    assert store.trial_checkpoint(conn, recipient) == b"strong"
    trial = store.get_trial(conn, recipient)
    assert trial["params"] == params and trial["unit"] == [0.0]  # the sampler's point stays
    assert trial["epochs_done"] == 2  # its own curve, untouched
    # the recipient's old blob is gone, nothing was copied
    assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == n_blobs - 1
    # the donor trains on: the shared blob stays for the recipient
    store.record_segment(conn, donor, epochs(3, 4), b"strong-4")
    assert store.trial_checkpoint(conn, recipient) == b"strong"
    store.record_segment(conn, recipient, epochs(3, 4), b"copied-4")  # the curve continues
    assert [m["epoch"] for m in store.trial_metrics(conn, recipient)] == [1, 2, 3, 4]
    rows = store.trial_lineage(conn, study_id)
    assert rows == [{"id": lineage_id, "trial_id": recipient, "number": 0, "epoch": 2,
                     "donor_trial_id": donor, "donor_number": 1,
                     "created_at": rows[0]["created_at"], "params": params}]


def test_exploit_with_a_copy_of_the_bytes(conn):
    _, (recipient, donor, _) = new(conn)
    store.record_segment(conn, recipient, epochs(1, 2), b"weak")
    store.record_segment(conn, donor, epochs(1, 2), b"strong")
    store.record_exploit(conn, recipient, donor, 2, {"learning_rate": 0.1}, b"strong")
    ids = [store.get_trial(conn, t)["checkpoint_id"] for t in (recipient, donor)]
    assert ids[0] != ids[1] and store.trial_checkpoint(conn, recipient) == b"strong"


def test_refusals_leave_nothing_behind(conn):
    study_id, (a, b, c) = new(conn)
    store.record_segment(conn, a, epochs(1, 2), b"a")
    store.record_segment(conn, b, epochs(1, 1), b"b")
    with pytest.raises(ValueError, match="donor trial .* has 1 epochs recorded; an exploit at"
                                         " epoch=2 needs both trials at that epoch"):
        store.record_exploit(conn, a, b, 2, {})
    with pytest.raises(ValueError, match="copies another trial of its own study"):
        store.record_exploit(conn, a, a, 2, {})
    other_study, (d, *_) = new(conn)
    store.record_segment(conn, d, epochs(1, 2), b"d")
    with pytest.raises(ValueError, match="of its own study"):
        store.record_exploit(conn, a, d, 2, {})
    store.record_segment(conn, c, epochs(1, 2), None)
    with pytest.raises(ValueError, match=f"donor trial {c} has no checkpoint"):
        store.record_exploit(conn, a, c, 2, {})
    with pytest.raises(store.NotFoundError, match="no donor trial with id=999"):
        store.record_exploit(conn, a, 999, 2, {})
    assert store.trial_lineage(conn, study_id) == []
    assert json.loads(conn.execute("SELECT params_json FROM trials WHERE id = ?",
                                   (a,)).fetchone()[0]) == {"learning_rate": 0.1}


def test_deleting_a_study_deletes_its_lineage(conn):
    study_id, (a, b, _) = new(conn)
    store.record_segment(conn, a, epochs(1, 2), b"a")
    store.record_segment(conn, b, epochs(1, 2), b"b")
    store.record_exploit(conn, a, b, 2, {"learning_rate": 0.2})
    store.delete_study(conn, study_id)
    assert conn.execute("SELECT COUNT(*) FROM trial_lineage").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0
