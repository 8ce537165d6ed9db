"""Log axes get full-value tick labels, few enough not to overlap (QA: Plotly's own labels read
``3 4 5 6 7 8 9 100 2`` for 30..200 units and stacked 17 labels on an exploding loss)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.charts import babysit, search
from app.charts.ticks import log_ticks, tick_text
from engine.search import Float, Int, RandomSampler, Space


def test_hidden_units_30_to_200_read_as_numbers_not_mantissas():
    ticks = log_ticks([30, 45, 80, 120, 200])
    assert ticks["ticktext"] == ["30", "50", "100", "200"]
    assert ticks["tickvals"] == [30.0, 50.0, 100.0, 200.0]


def test_five_decades_are_labelled_once_per_decade():
    ticks = log_ticks([1e-4, 3e-3, 0.2, 1.0])
    assert ticks["ticktext"] == ["1e-4", "0.001", "0.01", "0.1", "1"]


def test_many_decades_are_thinned_and_narrow_ranges_left_to_plotly():
    ticks = log_ticks([1e-12, 1.0], max_ticks=5)
    assert len(ticks["tickvals"]) <= 5
    assert log_ticks([0.0021, 0.0023]) == {}  # no round number between them
    assert log_ticks([None, float("nan"), -1.0, 0.0]) == {}


def test_tick_text():
    assert [tick_text(v) for v in (0.0, 30.0, 0.002, 1e-5, 2e6, 0.3)] == [
        "0", "30", "0.002", "1e-5", "2e6", "0.3"]


@given(st.lists(st.floats(1e-12, 1e12), min_size=1, max_size=30),
       st.integers(min_value=2, max_value=9))
def test_ticks_are_increasing_within_the_data_and_at_most_max_ticks(values, max_ticks):
    ticks = log_ticks(values, max_ticks)
    if not ticks:
        return
    vals = ticks["tickvals"]
    assert 2 <= len(vals) <= max_ticks
    assert vals == sorted(set(vals))
    assert min(values) / 1.2 <= vals[0] and vals[-1] <= max(values) * 1.2
    assert len(ticks["ticktext"]) == len(vals)


def test_search_charts_use_them_on_log_axes_only():
    space = Space({"learning_rate": Float(1e-4, 1.0, "log"), "hidden_units": Int(30, 200, "log"),
                   "beta1": Float(0.5, 0.99, "one_minus_log"), "dropout": Float(0.0, 0.5)})
    trials = [{"number": i, "state": "complete", "params": p, "best_val_acc": 0.5 + i / 100,
               "epochs_done": 3} for i, p in enumerate(RandomSampler().sample(space, 30, 1))]
    fig = search.pair_scatter(trials, space.to_dict(), "hidden_units", "beta1")
    assert "100" in fig.layout.xaxis.ticktext and "1" not in fig.layout.xaxis.ticktext
    assert fig.layout.yaxis.ticktext and fig.layout.yaxis.autorange == "reversed"
    panels = search.params_vs_score(trials, space.to_dict(), columns=4)
    assert all(len(panels.layout[f"xaxis{i}"].ticktext) <= 5 for i in (2, 3))
    assert panels.layout.xaxis4.ticktext is None  # dropout: a linear axis keeps Plotly's


def test_babysit_loss_axis_after_an_explosion_has_few_labels():
    losses = [0.6, 0.12, 0.03, 0.02, 211.0, 2000.0]
    points = [{"node_id": i, "epoch": i, "train_loss": v, "val_loss": v, "train_acc": 0.5,
               "val_acc": 0.5, "learning_rate": 0.01, "seconds": 1.0, "has_checkpoint": True}
              for i, v in enumerate(losses)]
    curves = [{"branch": 0, "parent_branch": None, "fork_node_id": None, "fork_epoch": None,
               "abandoned": False, "current": True, "points": points}]
    axis = babysit.curves_figure(curves).layout.yaxis
    assert axis.type == "log" and 2 <= len(axis.tickvals) <= 5
    assert np.isclose(min(axis.tickvals), 0.1) and axis.ticktext[-1] == "1000"


def test_bn_experiment_loss_axis_from_0_02_to_200_has_few_labels():
    from app.charts.inspector import experiment_figure

    runs = {"with batch norm": [{"epoch": e, "train_loss": v / 2, "val_loss": v}
                                for e, v in enumerate([0.1, 0.05, 0.04], start=1)],
            "without batch norm": [{"epoch": 1, "train_loss": 200.0, "val_loss": 1.0}]}
    axis = experiment_figure(runs).layout.yaxis
    assert axis.type == "log" and len(axis.tickvals) <= 7
    assert list(axis.ticktext) == ["0.1", "1", "10", "100"]
