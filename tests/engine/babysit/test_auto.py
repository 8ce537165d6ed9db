"""The automatic babysitter: on rising or non-finite validation loss, roll back to the best
checkpoint of the lineage and lower the learning rate."""

from __future__ import annotations

import math

from engine import babysit
from engine.storage import sessions as store

# Momentum SGD at learning rate 1.0 without batch norm bounces around on tiny moons (measured
# with seed 0 over 20 epochs: final validation loss 0.56 alone, 0.0003 with the babysitter).
NO_BN = {"hidden": [16, 16], "batch_norm": False}
TOO_HIGH = {"learning_rate": 1.0, "optimizer": "momentum", "batch_size": 32}


def lineage_val_losses(conn, sid):
    head = babysit.session_view(conn, sid)["head_node_id"]
    return [n["val_loss"] for n in store.lineage(conn, head) if n["val_loss"] is not None]


def test_babysitter_recovers_from_a_too_high_learning_rate(conn, make_session):
    alone = make_session(name="alone", model=NO_BN, config=TOO_HIGH)
    babysit.execute(conn, alone, "run", {"epochs": 20})
    watched = make_session(name="watched", model=NO_BN, config=TOO_HIGH,
                           auto={"enabled": True, "patience": 2})
    babysit.execute(conn, watched, "run", {"epochs": 20})

    plain, helped = lineage_val_losses(conn, alone), lineage_val_losses(conn, watched)
    assert helped[-1] < plain[-1] and min(helped) < min(plain)

    events = babysit.session_events(conn, watched)
    auto = [e for e in events if e["actor"] == "auto" and e["kind"] in ("rollback", "set")]
    assert auto and all("rose for 2 consecutive epochs" in e["payload"]["reason"] for e in auto)
    rollbacks = [e for e in auto if e["kind"] == "rollback"]
    lowered = [e["payload"]["changes"]["learning_rate"] for e in auto if e["kind"] == "set"]
    assert len(rollbacks) == len(lowered) >= 1
    assert all(new == old * 0.5 for old, new in lowered)
    view = babysit.session_view(conn, watched)
    assert view["config"]["learning_rate"] == 1.0 * 0.5 ** len(lowered)
    abandoned = [b for b in view["branches"] if b["abandoned"]]
    assert len(abandoned) == len(rollbacks) and view["branch"] == len(rollbacks)
    # 20 epochs were trained in all, across the branches.
    assert len(store.session_nodes(conn, watched)) == 1 + 20
    # Each rollback went to the best checkpoint of the lineage it left.
    for e in rollbacks:
        path = store.lineage(conn, e["payload"]["from_node"])
        best = min((n for n in path if n["val_loss"] is not None), key=lambda n: n["val_loss"])
        assert e["payload"]["to_node"] == best["id"]


def test_babysitter_lowers_the_rate_after_divergence_and_goes_on(conn, make_session):
    sid = make_session(model={"hidden": [16], "batch_norm": False},
                       config={"learning_rate": 1e4, "optimizer": "sgd", "batch_size": 32},
                       auto={"enabled": True, "patience": 2, "factor": 0.1,
                             "on_flags": False})  # the divergence path itself
    result = babysit.execute(conn, sid, "run", {"epochs": 12})
    assert result["status"] == "idle"
    kinds = [(o["kind"], o["auto"] is not None) for o in result["outcomes"]]
    first = kinds.index(("diverged", True))  # every divergence is handled by the babysitter
    assert ("diverged", False) not in kinds and ("epoch", False) in kinds[first:]
    assert len(result["outcomes"]) == 12  # a diverged attempt counts as one of the epochs
    diverged = [e for e in babysit.session_events(conn, sid) if e["kind"] == "diverged"]
    sets = [e for e in babysit.session_events(conn, sid) if e["kind"] == "set"]
    assert len(sets) >= len(diverged) >= 1
    assert all(e["actor"] == "auto" for e in sets)
    assert sets[0]["payload"]["reason"] == "the loss became non-finite"
    for n in store.session_nodes(conn, sid):
        assert all(n[f] is None or math.isfinite(n[f]) for f in store.METRIC_FIELDS)
    assert babysit.session_view(conn, sid)["config"]["learning_rate"] < 1e4


def auto_events(conn, sid, kind):
    return [e for e in babysit.session_events(conn, sid)
            if e["actor"] == "auto" and e["kind"] == kind]


def test_babysitter_gives_up_at_the_learning_rate_floor(conn, make_session):
    # Plain SGD at 1e4 diverges at once; cut by 10 each time, it reaches the floor of 100 (where
    # it still diverges) and must pause there instead of cutting on towards 0.
    sid = make_session(model={"hidden": [16], "batch_norm": False},
                       config={"learning_rate": 1e4, "optimizer": "sgd", "batch_size": 32},
                       auto={"enabled": True, "factor": 0.1, "min_learning_rate": 100.0})
    result = babysit.execute(conn, sid, "run", {"epochs": 30})
    view = babysit.session_view(conn, sid)
    assert result["status"] == view["status"] == "paused"
    assert view["config"]["learning_rate"] == 100.0
    gave_up = auto_events(conn, sid, "gave_up")
    assert len(gave_up) == 1 and "floor" in gave_up[0]["payload"]["reason"]
    assert "min_learning_rate=100" in view["message"]
    assert result["outcomes"][-1]["auto"] == view["message"]
    done = [e for e in babysit.session_events(conn, sid) if e["kind"] == "done"]
    assert done[-1]["payload"]["reason"] == "gave_up"
    assert len(result["outcomes"]) < 30


def test_babysitter_gives_up_after_its_rollback_cap_and_a_new_run_resets_it(conn, make_session):
    sid = make_session(model=NO_BN, config=TOO_HIGH,
                       auto={"enabled": True, "patience": 1, "tolerance": 0.0,
                             "max_rollbacks": 2})
    result = babysit.execute(conn, sid, "run", {"epochs": 60})
    assert result["status"] == "paused"
    assert len(auto_events(conn, sid, "set")) == 2
    gave_up = auto_events(conn, sid, "gave_up")
    assert len(gave_up) == 1 and "max_rollbacks=2" in gave_up[0]["payload"]["reason"]
    assert gave_up[0]["payload"]["actions"] == 2
    # A person asking for another run gives the babysitter a fresh allowance.
    babysit.execute(conn, sid, "run", {"epochs": 60})
    assert 2 < len(auto_events(conn, sid, "set")) <= 4


def test_defaults_bound_the_babysitter_on_a_long_noisy_run(conn, make_session):
    # The case: the defaults on moons. It must never fail, never go below its floor and
    # never act more than max_rollbacks times in one run.
    sid = make_session(auto={"enabled": True})
    result = babysit.execute(conn, sid, "run", {"epochs": 150})
    view = babysit.session_view(conn, sid)
    assert result["status"] in ("idle", "paused")
    assert len(auto_events(conn, sid, "set")) <= store.DEFAULT_AUTO["max_rollbacks"]
    assert view["config"]["learning_rate"] >= store.DEFAULT_AUTO["min_learning_rate"]


def test_babysitter_acts_on_exploding_gradients(conn, make_session):
    from tests.engine.study.sick import BLOBS

    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False},
                       config={"optimizer": "momentum", "learning_rate": 3.0, "batch_size": 16},
                       auto={"enabled": True, "factor": 0.1})
    babysit.execute(conn, sid, "run", {"epochs": 4})
    events = babysit.session_events(conn, sid)
    acts = [e for e in events if e["actor"] == "auto" and e["kind"] in ("rollback", "set")]
    assert acts[0]["kind"] == "rollback" and acts[0]["epoch"] == 0  # to before the explosion
    assert acts[0]["payload"]["reason"].startswith("exploding gradients at epoch 1 (norm ")
    assert acts[1]["payload"]["changes"]["learning_rate"] == [3.0, 3.0 * 0.1]
    view = babysit.session_view(conn, sid)
    assert view["config"]["learning_rate"] <= 3.0 * 0.1
    head = store.lineage(conn, view["head_node_id"])[-1]
    assert head["health"]["grad_norm"] < 1e3  # the new branch trains calmly


def test_babysitter_leaves_flags_alone_when_told(conn, make_session):
    from tests.engine.study.sick import BLOBS

    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False},
                       config={"optimizer": "momentum", "learning_rate": 3.0, "batch_size": 16},
                       auto={"enabled": True, "on_flags": False, "patience": 50})
    babysit.execute(conn, sid, "run", {"epochs": 3})
    assert not [e for e in babysit.session_events(conn, sid) if e["actor"] == "auto"
                and e["kind"] in ("rollback", "set")]


def acts_of(conn, sid):
    return [e for e in babysit.session_events(conn, sid)
            if e["actor"] == "auto" and e["kind"] in ("rollback", "set", "gave_up")]


def test_babysitter_acts_on_dead_relus(conn, make_session):
    """Plain SGD at 2 kills 69% of layer 2's ReLUs in its first epoch (gradient norm 0.16, no
    explosion yet): the babysitter rolls back to before the layer died and lowers the rate;
    the evidence is the reason of both events."""
    from tests.engine.study.sick import BLOBS

    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False},
                       config={"optimizer": "sgd", "learning_rate": 2.0, "batch_size": 16},
                       auto={"enabled": True, "factor": 0.1, "patience": 50})
    babysit.execute(conn, sid, "run", {"epochs": 4})
    acts = acts_of(conn, sid)
    assert [(e["kind"], e["payload"]["rule"]) for e in acts[:2]] == [
        ("rollback", "dead_relus"), ("set", "dead_relus")]
    reason = acts[0]["payload"]["reason"]
    assert reason.endswith("dead ReLUs in layer 2 at epoch " + str(acts[0]["payload"]
                                                                    ["from_epoch"]))
    assert int(reason.split("%")[0]) >= 50 and acts[1]["payload"]["reason"] == reason
    # back to the last epoch whose layer 2 was still alive (the root if it died at once)
    path = store.lineage(conn, acts[0]["payload"]["from_node"])
    to = next(n for n in path if n["id"] == acts[0]["payload"]["to_node"])
    assert to["health"] is None or to["health"]["dead_2"] < 0.5
    after = [n for n in path if n["epoch"] > to["epoch"]]
    assert after and all(n["health"]["dead_2"] >= 0.5 for n in after)
    assert acts[1]["payload"]["changes"]["learning_rate"] == [2.0, 2.0 * 0.1]


def test_babysitter_acts_on_a_saturated_softmax(conn, make_session):
    """tanh and plain SGD at 30: half the rows sure and wrong after one epoch (the gradients
    do not explode, no ReLU to die): roll back and take smaller steps."""
    from tests.engine.study.sick import BLOBS

    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False,
                                             "activation": "tanh"},
                       config={"optimizer": "sgd", "learning_rate": 30.0, "batch_size": 16},
                       auto={"enabled": True, "factor": 0.1, "patience": 50})
    babysit.execute(conn, sid, "run", {"epochs": 2})
    acts = acts_of(conn, sid)
    assert [(e["kind"], e["payload"]["rule"]) for e in acts[:2]] == [
        ("rollback", "softmax_saturated"), ("set", "softmax_saturated")]
    assert acts[0]["payload"]["reason"] == "softmax saturated at epoch 1: 50% confident and wrong"
    assert acts[0]["payload"]["to_epoch"] == 0
    assert acts[1]["payload"]["changes"]["learning_rate"] == [30.0, 3.0]


def test_babysitter_raises_the_rate_when_nothing_is_learnt_and_stops_at_its_cap(
        conn, make_session):
    """SGD at 1e-6: the loss is flat. After 5 flat epochs at one rate the babysitter raises it
    (divided by factor, no rollback: there is nothing better to go back to), waits for 5 new
    epochs at the new rate, and after max_rollbacks acts it gives up and pauses."""
    from tests.engine.study.sick import BLOBS

    sid = make_session(dataset=BLOBS, model={"hidden": [16, 16], "batch_norm": False},
                       config={"optimizer": "sgd", "learning_rate": 1e-6, "batch_size": 16},
                       auto={"enabled": True, "factor": 0.5, "max_rollbacks": 2})
    result = babysit.execute(conn, sid, "run", {"epochs": 30})
    acts = acts_of(conn, sid)
    assert [e["kind"] for e in acts] == ["set", "set", "gave_up"]
    assert [e["epoch"] for e in acts] == [5, 10, 15]
    assert acts[0]["payload"]["reason"] == ("no learning: loss flat at 1.19 for 5 epochs at "
                                            "learning rate 1e-6")
    assert acts[0]["payload"]["changes"]["learning_rate"] == [1e-6, 2e-6]
    assert acts[1]["payload"]["changes"]["learning_rate"] == [2e-6, 4e-6]
    assert acts[2]["payload"]["rule"] == "no_learning"
    assert "max_rollbacks=2" in acts[2]["payload"]["reason"]
    view = babysit.session_view(conn, sid)
    assert result["status"] == view["status"] == "paused" and view["branch"] == 0
    assert view["config"]["learning_rate"] == 4e-6
