"""Parameter importance and advice on made-up trials whose score depends on one parameter."""

from __future__ import annotations

import numpy as np

from engine.study.importance import MIN_TRIALS, advice, importance

SPACE = {"params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0,
                                      "scale": "log"},
                    "l2": {"type": "float", "low": 0.0, "high": 0.1, "scale": "linear"}},
         "fixed": {}}


def trials_where(score_of, n=40, seed=0):
    rng = np.random.default_rng(seed)
    trials, scores = [], {}
    for i in range(n):
        u = rng.random(2)
        trials.append({"number": i, "unit": u.tolist(), "state": "complete",
                       "params": {"learning_rate": 10 ** (-4 + 4 * u[0]), "l2": 0.1 * u[1]},
                       "target_epochs": 10, "epochs_done": 10})
        scores[i] = score_of(u)
    return trials, scores


def test_the_parameter_that_drives_the_score_gets_the_importance():
    trials, scores = trials_where(lambda u: -(u[0] - 0.5) ** 2)
    result = importance(trials, ["learning_rate", "l2"], scores)
    assert result["n"] == 40 and result["shares"]["learning_rate"] > 0.8
    assert abs(sum(result["shares"].values()) - 1) < 1e-9
    assert "random forest" in result["method"]


def test_too_few_trials_give_no_importance():
    trials, scores = trials_where(lambda u: u[0], n=MIN_TRIALS - 1)
    assert importance(trials, ["learning_rate", "l2"], scores) is None


def test_advice_names_the_boundary_the_unimportant_knob_and_pruning():
    trials, scores = trials_where(lambda u: u[0])  # higher learning rate is always better
    trials[0]["state"], trials[0]["epochs_done"] = "pruned", 3
    shares = importance(trials, ["learning_rate", "l2"], scores)["shares"]
    lines = advice({"space": SPACE}, trials, scores, shares)
    kinds = {a["kind"]: a for a in lines}
    edge = kinds["boundary"]
    assert "high end of learning_rate" in edge["text"]
    kind, payload = edge["action"]
    assert kind == "set_space" and payload["params"]["learning_rate"]["high"] == 100.0
    assert kinds["unimportant"]["action"][1]["fix"].keys() == {"l2"}
    assert "saved 7 epochs" in kinds["pruning"]["text"]


def test_no_advice_without_evidence():
    trials, scores = trials_where(lambda u: -(u[0] - 0.5) ** 2 - (u[1] - 0.5) ** 2)
    shares = importance(trials, ["learning_rate", "l2"], scores)["shares"]
    assert advice({"space": SPACE}, trials, scores, shares) == []


def test_scores_in_sqlite_match_the_ones_from_the_epochs(db_path):
    from engine.search import Objective
    from engine.storage import studies as store
    from engine.storage.db import connect
    from engine.study.ranking import columns_scores, study_scores
    from tests.app.fakes import fake_study

    conn = connect(db_path)
    study_id = fake_study(conn, 6, 4, finished=5)
    metrics = store.study_metrics(conn, study_id)
    for metric in ("val_acc", "val_loss", "val_error"):
        for at in ("best", "last", 2):
            study = {**store.get_study(conn, study_id), "objective": {"metric": metric},
                     "rank": {"at": at}}
            want = columns_scores(Objective(metric), metrics, {"at": at})
            got = study_scores(conn, study)
            assert got.keys() == want.keys() and len(got) == 5
            assert all(abs(got[n] - want[n]) < 1e-12 for n in got), (metric, at)
