"""Chart builders for where a search looked: traces and axis types follow each parameter's scale."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.charts import search
from engine.search import Choice, Float, Int, RandomSampler, Space

SPACE = Space(
    {
        "learning_rate": Float(1e-4, 1.0, "log"),
        "beta1": Float(0.8, 0.999, "one_minus_log"),
        "dropout": Float(0.0, 0.5, "linear"),
        "hidden_units": Int(8, 128, "log"),
        "batch_norm": Choice((True, False)),
    },
    {"optimizer": "adam"},
)


def make_trials(n: int = 20, seed: int = 0, missing: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    trials = []
    for i, params in enumerate(RandomSampler().sample(SPACE, n, seed)):
        score = None if i < missing else float(rng.random())
        trials.append({"number": i, "state": "complete" if score is not None else "running",
                       "params": params, "best_val_acc": score,
                       "best_val_loss": None if score is None else 1 - score,
                       "epochs_done": 5, "updated_at": float(i)})
    return trials


def xaxis(fig: go.Figure, i: int):
    return fig.layout["xaxis" if i == 1 else f"xaxis{i}"]


def test_params_vs_score_puts_each_parameter_on_its_scale():
    fig = search.params_vs_score(make_trials(), SPACE.to_dict())
    axes = {xaxis(fig, i).title.text: xaxis(fig, i) for i in range(1, 6)}
    assert axes["learning_rate"].type == "log"
    assert axes["1 - beta1"].type == "log" and axes["1 - beta1"].autorange == "reversed"
    assert axes["dropout"].type == "linear"
    assert axes["hidden_units"].type == "log"
    assert axes["batch_norm"].type == "category"
    assert list(axes["batch_norm"].categoryarray) == ["True", "False"]


def test_params_vs_score_plots_one_minus_beta_and_skips_unscored():
    trials = make_trials(10, missing=3)
    fig = search.params_vs_score(trials, SPACE.to_dict())
    beta_trace = next(t for t in fig.data if t.name == "beta1")
    expected = [1 - t["params"]["beta1"] for t in trials[3:]]
    np.testing.assert_allclose(beta_trace.x, expected)
    assert len(beta_trace.y) == 7
    best = search.best_trial(trials)
    assert best["best_val_acc"] == max(t["best_val_acc"] for t in trials[3:])
    assert any(t.name == f"best: trial {best['number']}" for t in fig.data)


def test_pair_scatter_axes_and_zoom_box_in_value_coordinates():
    box = {"unit": {}, "values": {"learning_rate": [1e-3, 1e-2], "beta1": [0.9, 0.99]}}
    fig = search.pair_scatter(make_trials(), SPACE.to_dict(), "learning_rate", "beta1", box=box)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "1 - beta1"
    outline = next(t for t in fig.data if t.name == "zoom box")
    assert list(outline.x) == [1e-3, 1e-2, 1e-2, 1e-3, 1e-3]
    np.testing.assert_allclose(outline.y, [0.1, 0.1, 0.01, 0.01, 0.1])


def test_pair_scatter_with_child_trials_and_a_category_axis():
    fig = search.pair_scatter(make_trials(8, missing=2), SPACE.to_dict(), "batch_norm",
                              "dropout", child_trials=make_trials(5, seed=1),
                              box={"values": {"batch_norm": [True], "dropout": [0.1, 0.2]}})
    names = [t.name for t in fig.data]
    assert names == ["not scored yet", "parent", "child"]  # no box on a category axis
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "linear"
    assert fig.data[2].marker.symbol == "diamond"


def test_parallel_coordinates_log_axes_labelled_with_values():
    fig = search.parallel_coordinates(make_trials(), SPACE.to_dict())
    dims = {d.label: d for d in fig.data[0].dimensions}
    lr = dims["learning_rate (log)"]
    assert list(lr.tickvals) == [-4, -3, -2, -1, 0] and lr.ticktext[0] == "0.0001"
    beta = dims["1 - beta1 (log)"]
    assert beta.range[0] > beta.range[1]  # reversed: larger betas on top
    assert "0.99" in beta.ticktext
    assert list(dims["batch_norm"].ticktext) == ["True", "False"]
    assert "best validation accuracy" in dims


@pytest.mark.parametrize("x, title", [("trials", "trials"), ("epochs", "epochs trained")])
def test_best_so_far_is_a_running_maximum(x, title):
    trials = make_trials(6, missing=1)
    fig = search.best_so_far_figure(trials, x=x)
    running = list(fig.data[1].y)
    assert np.isnan(running[0])  # no score yet: a gap (NaN is sent as null, as None was)
    assert running[1:] == list(np.maximum.accumulate([t["best_val_acc"] for t in trials[1:]]))
    assert fig.layout.xaxis.title.text.startswith(title)
    if x == "epochs":
        assert list(fig.data[0].x) == [5, 10, 15, 20, 25, 30]


def test_sampler_preview_log_shows_own_scale_and_linear_axis():
    dim = SPACE.params["learning_rate"]
    values = [dim.from_unit(u) for u in np.linspace(0, 1, 9)]
    fig = search.sampler_preview("learning_rate", dim.to_dict(), values)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "linear"
    assert len(fig.data) == 2 and len(fig.data[0].x) == 9


def test_sampler_preview_linear_has_one_strip_and_choice_counts():
    fig = search.sampler_preview("dropout", {"type": "float", "low": 0, "high": 0.5,
                                             "scale": "linear"}, [0.1, 0.2])
    assert len(fig.data) == 1 and fig.layout.xaxis.type == "linear"
    fig = search.sampler_preview("batch_norm", {"type": "choice", "options": [True, False]},
                                 [True, True, False])
    assert isinstance(fig.data[0], go.Bar) and list(fig.data[0].y) == [2, 1]


def test_many_points_switch_to_webgl():
    trials = make_trials(search.MANY_POINTS + 1)
    fig = search.params_vs_score(trials, SPACE.to_dict())
    assert isinstance(fig.data[0], go.Scattergl)


def test_sampler_preview_titles_are_short_and_in_plain_words():
    """At 1,024 px "the same points on a linear axis of learning_rate" ran out of its chart,
    and a beta's preview read "1 - beta1 on its one_minus_log scale" (the engine's name)."""
    beta = {"type": "float", "low": 0.8, "high": 0.999, "scale": "one_minus_log"}
    fig = search.sampler_preview("beta1", beta, [0.9, 0.99])
    assert [a.text for a in fig.layout.annotations] == [
        "1 - beta1 on a log scale", "the same points on a linear axis"]
    lr = SPACE.params["learning_rate"].to_dict()
    fig = search.sampler_preview("learning_rate", lr, [0.001, 0.01])
    assert fig.layout.annotations[0].text == "learning_rate on a log scale"
