"""The babysit page shows the current lineage's network health and flags; the auto-babysitter's
act on exploding gradients is in the event log with its reason."""

from __future__ import annotations

import json

from app.charts.health import lineage_points
from engine import babysit
from tests.app.conftest import no_exception
from tests.engine.study.sick import BLOBS

SICK = {"dataset": BLOBS, "model": {"hidden": [16, 16], "batch_norm": False},
        "config": {"optimizer": "momentum", "learning_rate": 3.0, "batch_size": 16}}


def sick_session(conn, **extra) -> int:
    sid = babysit.new_session(conn, name="sick", seed=0, **SICK, **extra)
    babysit.execute(conn, sid, "run", {"epochs": 3})
    return sid


def health_chart(at) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if any(a.get("text") == "gradient norm"
               for a in spec["layout"].get("annotations", [])):
            return spec
    raise AssertionError("no health chart on the page")


def test_the_page_shows_health_curves_and_flags(open_page, conn):
    sid = sick_session(conn)
    at = open_page("babysit", session=sid)
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("exploding gradients from epoch 1") for e in errors), errors
    assert any("dead ReLUs in layer" in e for e in errors), errors
    spec = health_chart(at)
    grads = [t for t in spec["data"] if t.get("name", "").startswith("layer")
             and t.get("xaxis", "x") == "x"]
    softmax = [t for t in spec["data"] if t.get("name") == "mean max probability"]
    assert softmax[0]["x"] == [1, 2, 3]  # every trained epoch measured
    assert max(y for t in grads for y in t["y"]) > 1e3


def test_the_babysitters_act_on_a_flag_is_logged(open_page, conn):
    sid = sick_session(conn, auto={"enabled": True, "factor": 0.1})
    at = open_page("babysit", session=sid)
    no_exception(at)
    log = " ".join(str(v) for df in at.dataframe for v in df.value.astype(str).values.ravel())
    log += " ".join(m.value for m in at.markdown)
    assert "exploding gradients at epoch 1" in log


def test_lineage_points_follow_the_current_branch_back_to_the_root():
    def pts(*epochs):
        return [{"epoch": e, "node_id": 100 * e} for e in epochs]

    curves = [
        {"branch": 0, "parent_branch": None, "fork_epoch": None, "current": False,
         "points": pts(0, 1, 2, 3)},
        {"branch": 1, "parent_branch": 0, "fork_epoch": 2, "current": False, "points": pts(3, 4)},
        {"branch": 2, "parent_branch": 1, "fork_epoch": 3, "current": True, "points": pts(4, 5)},
    ]
    assert [p["epoch"] for p in lineage_points(curves)] == [0, 1, 2, 3, 4, 5]
    curves[0]["current"], curves[2]["current"] = True, False
    assert [p["epoch"] for p in lineage_points(curves)] == [0, 1, 2, 3]


def test_a_session_whose_relus_all_died_explains_the_empty_gradient_panels(open_page, conn):
    """Plain SGD at learning rate 3 kills every ReLU of layer 2 within three epochs: no
    gradient reaches layers 1-3, so their gradient norms are 0 and have no place on a log
    axis. The page says why, and what to do, instead of showing empty panels."""
    sid = babysit.new_session(conn, name="dead", seed=0, dataset=BLOBS,
                              model={"hidden": [16, 16], "batch_norm": False},
                              config={"optimizer": "sgd", "learning_rate": 3.0,
                                      "batch_size": 16})
    babysit.execute(conn, sid, "run", {"epochs": 3})
    at = open_page("babysit", session=sid)
    no_exception(at)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Every ReLU in layer 2 is dead (epoch 3)") and
               "Lower the learning rate" in w for w in warnings), warnings
    spec = health_chart(at)
    zero = [a["text"] for a in spec["layout"]["annotations"] if a.get("name") == "zero"]
    assert any(t.startswith("layers 1, 2, 3: 0<br>since epoch") for t in zero), zero
