"""The study reads cached per study version: read once, read again when a row changes."""

from __future__ import annotations

from app import study_cache
from engine import study as studies
from engine.storage import studies as store
from tests.app.fakes import fake_study


def test_metrics_are_read_once_per_study_version(conn, monkeypatch):
    study_id = fake_study(conn, 4, 3, finished=3)
    reads = []
    real = studies.study_metrics

    def counting(c, sid, **kw):
        reads.append(sid)
        return real(c, sid, **kw)

    monkeypatch.setattr(study_cache.studies, "study_metrics", counting)
    study = store.get_study(conn, study_id)
    first = study_cache.study_metrics(conn, study)
    assert study_cache.study_metrics(conn, store.get_study(conn, study_id)) is first
    assert reads == [study_id] and len(first["epoch"]) == 9
    last = store.list_trials(conn, study_id)[3]
    store.record_epochs(conn, last["id"], [{"epoch": 1, "train_loss": 0.5, "train_acc": 0.7,
                                            "val_loss": 0.5, "val_acc": 0.7,
                                            "learning_rate": 0.01, "seconds": 0.1}])
    again = study_cache.study_metrics(conn, store.get_study(conn, study_id))
    assert reads == [study_id, study_id] and len(again["epoch"]) == 10
