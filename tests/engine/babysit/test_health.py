"""The babysit runner stores network health with every node, and the session's view carries
the flags of its current lineage."""

from __future__ import annotations

from engine import babysit
from engine.diagnosis import flag_kinds
from tests.engine.study.sick import BLOBS


def test_the_babysit_runner_stores_health_per_node(conn, make_session):
    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False},
                       config={"optimizer": "momentum", "learning_rate": 3.0, "batch_size": 16})
    babysit.execute(conn, sid, "run", {"epochs": 3})
    [curve] = babysit.session_curves(conn, sid)
    root, *trained = curve["points"]
    assert root["health"] is None and all(p["health"]["rows"] == 48 for p in trained)
    view = babysit.session_view(conn, sid)
    assert flag_kinds(view["flags"]) == ["exploding_gradients", "dead_relus"]
    assert view["flags"][0]["text"].startswith("exploding gradients from epoch 1")


def test_an_adopted_trial_keeps_its_health(conn, db_path):
    from engine.storage import studies
    from tests.engine.study.sick import sick_study

    study_id = sick_study(db_path)
    trial = next(t for t in studies.list_trials(conn, study_id)
                 if t["params"]["learning_rate"] == 3.0)
    sid = babysit.adopt_trial(conn, trial["id"])
    points = [p for c in babysit.session_curves(conn, sid) for p in c["points"]]
    by_epoch = {m["epoch"]: m["health"] for m in studies.trial_metrics(conn, trial["id"])}
    assert {p["epoch"]: p["health"] for p in points} == {0: None, **by_epoch}
    assert flag_kinds(babysit.session_view(conn, sid)["flags"]) == flag_kinds(trial["flags"])
