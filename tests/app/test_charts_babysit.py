"""app/charts/babysit: branch curves, faded abandoned branches, markers, log axes, boundary."""

from __future__ import annotations

import numpy as np
import pytest

from app.charts.babysit import (
    ABANDONED_OPACITY,
    EMPTY_TEXT,
    MAX_BRANCHES,
    boundary_figure,
    branch_points,
    curves_figure,
    describe_event,
    event_log_rows,
    shown_branches,
)


def _point(node_id, epoch, loss, lr=1e-2):
    if loss is None:
        metrics = dict.fromkeys(("train_loss", "train_acc", "val_loss", "val_acc",
                                 "learning_rate", "seconds"))
    else:
        metrics = {"train_loss": loss, "train_acc": 1 - loss / 2, "val_loss": loss * 1.1,
                   "val_acc": 1 - loss / 2, "learning_rate": lr, "seconds": 0.1}
    return {"node_id": node_id, "epoch": epoch, "has_checkpoint": True, **metrics}


@pytest.fixture
def session():
    """Branch 0: epochs 0..5, lr raised at epoch 3, loss rising; rolled back to epoch 3 ->
    branch 1 with epochs 4..5."""
    b0 = [_point(1, 0, None), _point(2, 1, 0.9), _point(3, 2, 0.6), _point(4, 3, 0.5),
          _point(5, 4, 0.8, lr=1.0), _point(6, 5, 1.5, lr=1.0)]
    b1 = [_point(7, 4, 0.45), _point(8, 5, 0.4)]
    curves = [
        {"branch": 0, "parent_branch": None, "fork_node_id": None, "fork_epoch": None,
         "abandoned": True, "current": False, "points": b0},
        {"branch": 1, "parent_branch": 0, "fork_node_id": 4, "fork_epoch": 3,
         "abandoned": False, "current": True, "points": b1},
    ]
    events = [
        {"id": 1, "kind": "created", "actor": "user", "branch": 0, "epoch": 0, "payload": {}},
        {"id": 2, "kind": "set", "actor": "user", "branch": 0, "epoch": 3,
         "payload": {"changes": {"learning_rate": [0.01, 1.0]}}},
        {"id": 3, "kind": "rollback", "actor": "user", "branch": 1, "epoch": 3,
         "payload": {"from_node": 6, "from_epoch": 5, "to_node": 4, "to_epoch": 3,
                     "new_branch": 1}},
    ]
    return curves, events


def _traces(fig, prefix):
    return [t for t in fig.data if (t.name or "").startswith(prefix)]


def test_every_branch_is_drawn_with_five_lines(session):
    curves, events = session
    fig = curves_figure(curves, events)
    assert len(_traces(fig, "branch 0")) == 5
    assert len(_traces(fig, "branch 1")) == 5
    assert len(fig.data) == 5 * 2 + 2  # + knob-change and rollback markers


def test_abandoned_branch_is_faded_and_current_is_bold(session):
    fig = curves_figure(*session)
    for t in _traces(fig, "branch 0"):
        assert t.opacity == ABANDONED_OPACITY and "(abandoned)" in t.name
    for t in _traces(fig, "branch 1"):
        assert t.opacity == 1.0 and t.line.width > 2


def test_new_branch_starts_at_its_fork_point(session):
    fig = curves_figure(*session)
    val = next(t for t in fig.data if t.name.startswith("branch 1 val loss"))
    assert list(val.x) == [3, 4, 5]
    assert val.y[0] == pytest.approx(0.55)
    assert list(val.customdata) == [4, 7, 8]  # node ids: a click picks a rollback target


def test_markers_for_knob_changes_and_rollbacks(session):
    fig = curves_figure(*session)
    knob = next(t for t in fig.data if t.name == "knob change")
    assert list(knob.x) == [3] and "learning_rate: 0.01 → 1" in knob.text[0]
    rollback = next(t for t in fig.data if t.name == "rollback")
    assert list(rollback.x) == [3] and list(rollback.customdata) == [4]
    assert "from epoch 5 to epoch 3" in rollback.text[0]


def test_axis_types_loss_and_learning_rate_are_log(session):
    fig = curves_figure(*session)
    assert fig.layout.yaxis.type == "log"  # loss
    assert fig.layout.yaxis2.type != "log"  # accuracy
    assert fig.layout.yaxis3.type == "log"  # learning rate
    lr = next(t for t in fig.data if t.name.startswith("branch 0 learning rate"))
    assert lr.yaxis == "y3"


def test_root_without_metrics_and_no_events():
    curves = [{"branch": 0, "parent_branch": None, "fork_node_id": None, "fork_epoch": None,
               "abandoned": False, "current": True, "points": [_point(1, 0, None)]}]
    fig = curves_figure(curves, [])
    assert len(fig.data) == 5
    assert fig.data[1].y == (None,)


def test_branch_points_finds_the_fork_without_its_id(session):
    curves, _ = session
    curves[1] = {**curves[1], "fork_node_id": None}
    assert [p["node_id"] for p in branch_points(curves)[1]] == [4, 7, 8]


def test_boundary_two_classes_is_a_probability_contour(rng):
    xx, yy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-2, 2, 4))
    p1 = (xx.ravel() > 0).astype(float)
    proba = np.column_stack([1 - p1, p1])
    X, y = rng.normal(size=(10, 2)), np.arange(10) % 2
    fig = boundary_figure(xx, yy, proba, X, y, class_names=["a", "b"])
    kinds = [t.type for t in fig.data]
    assert kinds == ["contour", "contour", "scatter", "scatter"]
    assert np.asarray(fig.data[0].z).shape == (4, 5)
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)
    assert list(fig.layout.xaxis.range) == [-1, 1] and list(fig.layout.yaxis.range) == [-2, 2]
    assert len(fig.data[2].x) + len(fig.data[3].x) == 10


def test_boundary_many_classes_is_a_class_heatmap(rng):
    xx, yy = np.meshgrid(np.linspace(0, 1, 3), np.linspace(0, 1, 3))
    proba = rng.dirichlet(np.ones(3), size=9)
    fig = boundary_figure(xx, yy, proba, rng.normal(size=(6, 2)), np.arange(6) % 3,
                          class_names=["0", "1", "2"])
    assert [t.type for t in fig.data] == ["heatmap", "scatter", "scatter", "scatter"]
    z = np.asarray(fig.data[0].z)
    np.testing.assert_array_equal(np.floor(z).ravel(), proba.argmax(axis=1))


def test_event_log_describes_every_kind_newest_first():
    events = [
        {"kind": "created", "actor": "user", "branch": 0, "epoch": 0, "payload": {}},
        {"kind": "run", "actor": "user", "branch": 0, "epoch": 0, "payload": {"epochs": None}},
        {"kind": "auto", "actor": "user", "branch": 0, "epoch": 2,
         "payload": {"enabled": True, "patience": 3, "factor": 0.5}},
        {"kind": "rollback", "actor": "auto", "branch": 1, "epoch": 1,
         "payload": {"from_epoch": 5, "to_epoch": 1, "new_branch": 1,
                     "reason": "val loss rose for 3 epochs"}},
        {"kind": "set", "actor": "auto", "branch": 1, "epoch": 1,
         "payload": {"changes": {"learning_rate": [0.1, 0.05], "batch_size": [32, 64]}}},
        {"kind": "rejected", "actor": "user", "branch": 1, "epoch": 1,
         "payload": {"command": "set", "message": "bad value"}},
        {"kind": "done", "actor": "auto", "branch": 1, "epoch": 3,
         "payload": {"reason": "diverged"}},
    ]
    rows = event_log_rows(events)
    assert [r["what"] for r in rows] == [
        "run ended: diverged",
        "rejected: set: bad value",
        "the babysitter changed learning_rate: 0.1 → 0.05, batch_size: 32 → 64",
        "the babysitter rolled back from epoch 5 to epoch 1 (new branch 1) "
        "(val loss rose for 3 epochs)",
        "you turned the automatic babysitter on (patience 3, factor 0.5)",
        "you asked for a run until paused",
        "created",
    ]
    assert rows[0]["who"] == "auto" and rows[-1]["who"] == "you"
    assert describe_event({"kind": "pause", "actor": "user", "branch": 0, "epoch": 4}) == (
        "you: pause")


def test_a_thousand_branches_draw_only_the_current_lineage_and_the_latest():
    # A chain of rollbacks: branch b forks from branch b - 1 at epoch b; 1,000 branches.
    curves = [{"branch": 0, "parent_branch": None, "fork_node_id": None, "fork_epoch": None,
               "abandoned": True, "current": False, "points": [_point(0, 0, 1.0)]}]
    for b in range(1, 1000):
        curves.append({"branch": b, "parent_branch": b - 1, "fork_node_id": b - 1,
                       "fork_epoch": b - 1, "abandoned": b < 990, "current": b == 990,
                       "points": [_point(b, b, 1.0 / b)]})
    fig = curves_figure(curves, [])
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert len(legend) == 2 * MAX_BRANCHES  # train and val loss per drawn branch
    drawn = {int(name.split()[1]) for name in legend}
    assert drawn == set(range(979, 991))  # the current branch and its nearest ancestors
    assert "showing 12 of 1,000 branches" in " ".join(a.text for a in fig.layout.annotations)
    assert shown_branches(curves, limit=3) == [990, 989, 988]
    assert shown_branches(curves[:2], limit=3) == [1, 0]  # no current: the latest first


def test_event_log_says_why_the_babysitter_gave_up():
    event = {"kind": "gave_up", "actor": "auto", "branch": 3, "epoch": 9,
             "payload": {"reason": "gave up: the learning rate 1e-06 is at its floor",
                         "trigger": "validation loss rose for 3 consecutive epochs"}}
    assert describe_event(event) == (
        "the babysitter gave up: the learning rate 1e-06 is at its floor (after: validation "
        "loss rose for 3 consecutive epochs)")


def test_an_untrained_session_has_sane_axes_and_says_why_it_is_empty():
    """A new session used to show accuracy axes from -100% to 400% (autorange of no data)."""
    curves = [{"branch": 0, "parent_branch": None, "fork_node_id": None, "fork_epoch": None,
               "abandoned": False, "current": True, "points": [_point(1, 0, None)]}]
    fig = curves_figure(curves, [])
    assert tuple(fig.layout.yaxis2.range) == (0, 1.02)  # accuracy 0-100%
    assert tuple(fig.layout.xaxis3.range) == (0, 10)
    assert tuple(fig.layout.yaxis.range) == (-1, 1)  # loss 0.1..10 on its log axis
    assert any(a.text == EMPTY_TEXT for a in fig.layout.annotations)


def test_a_trained_session_keeps_accuracy_in_0_to_100_and_no_empty_note(session):
    fig = curves_figure(*session)
    assert tuple(fig.layout.yaxis2.range) == (0, 1.02)
    assert fig.layout.xaxis3.range is None
    assert not any(a.text == EMPTY_TEXT for a in fig.layout.annotations)
