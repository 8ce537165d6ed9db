"""Comparing studies: best against budget, distinct values, overlaid samples; data previews."""

from __future__ import annotations

import numpy as np

from app.charts import compare, data
from engine.search import Float, GridSampler, RandomSampler, Space

SPACE = Space({"learning_rate": Float(1e-4, 1.0, "log"), "dropout": Float(0.0, 0.3)})


def entry(name: str, sampler, scores) -> dict:
    params = sampler.sample(SPACE, len(scores), 0)
    trials = [{"number": i, "params": p, "best_val_acc": s, "epochs_done": 10,
               "updated_at": 100.0 + 2 * i, "state": "complete"}
              for i, (p, s) in enumerate(zip(params, scores))]
    return {"name": name, "space": SPACE.to_dict(), "trials": trials, "created_at": 100.0}


GRID = entry("grid", GridSampler(3, shuffle=False), [0.5, 0.7, 0.6, 0.8, 0.4, 0.9, 0.3, 0.2, 0.1])
RANDOM = entry("random", RandomSampler(), [0.6, None, 0.65, 0.9, 0.95, 0.1, 0.2, 0.3, 0.4])


def test_budget_curve_in_epochs_and_seconds():
    x, best = compare.budget_curve(RANDOM, budget="epochs")
    assert x == [10, 20, 30, 40, 50, 60, 70, 80]  # the unscored trial is skipped
    assert best[:4] == [0.6, 0.65, 0.9, 0.95]
    x, _ = compare.budget_curve(GRID, budget="seconds")
    assert x == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]


def test_best_vs_budget_one_step_line_per_study():
    fig = compare.best_vs_budget([GRID, RANDOM], budget="seconds")
    assert [t.name for t in fig.data] == ["grid", "random"]
    assert all(t.line.shape == "hv" for t in fig.data)
    assert fig.layout.xaxis.title.text.startswith("wall time")


def test_a_3x3_grid_tries_3_learning_rates_random_tries_9():
    names, counts = compare.distinct_counts([GRID, RANDOM])
    assert names == ["learning_rate", "dropout"]
    assert counts == [[3, 3], [9, 9]]
    fig = compare.distinct_values_figure([GRID, RANDOM])
    assert [list(t.x) for t in fig.data] == [[3, 3], [9, 9]]
    assert [list(t.y) for t in fig.data] == [names, names] and fig.data[0].orientation == "h"


def test_overlay_points_uses_the_parameter_scales():
    fig = compare.overlay_points([GRID, RANDOM], "learning_rate", "dropout")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "linear"
    assert [len(t.x) for t in fig.data] == [9, 9]


def test_data_previews():
    X = np.array([[0, 0], [1, 1], [2, 0]], float)
    fig = data.scatter_2d(X, np.array([0, 1, 1]), ["a", "b"])
    assert [len(t.x) for t in fig.data] == [1, 2]
    tiles = data.mosaic(np.ones((12, 8, 8)), columns=5)
    assert tiles.shape == (3 * 9 - 1, 5 * 9 - 1)
    assert np.isnan(tiles[8, 0]) and tiles[0, 0] == 1 and np.isnan(tiles[-1, -1])
    fig = data.digits_grid(np.zeros((3, 8, 8)), [1, 2, 3])
    assert fig.data[0].type == "heatmap"
    fig = data.class_counts(["0", "1"], [3, 4], [1, 1])
    assert [list(t.y) for t in fig.data] == [[3, 4], [1, 1]]


def test_half_width_legends_go_under_the_chart_or_away_past_four_studies():
    """QA: nine studies' long names wrapped into a scrolled legend box over the bars."""
    two = compare.distinct_values_figure([GRID, RANDOM])
    assert two.layout.legend.y < 0 and two.layout.showlegend is not False
    many = [{**GRID, "id": i, "name": f"a study with a rather long name {i}"} for i in range(6)]
    for fig in (compare.distinct_values_figure(many),
                compare.overlay_points(many, "learning_rate", "dropout")):
        assert fig.layout.showlegend is False
    assert compare.label(many[0]) == "#0 a study with a rather long…"
    assert len({t.line.color for t in compare.best_vs_budget(many).data}) == 6
    assert compare.best_vs_budget(many).layout.legend.y < 0  # not over the lines near 1.0
