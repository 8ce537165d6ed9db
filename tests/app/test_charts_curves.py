"""Curves of many trials: one gapped WebGL trace, highlighted best, aggregation, downsampling."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.charts.curves import count_points, curves_figure


def metrics(n_trials: int, n_epochs: int, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    numbers = np.repeat(np.arange(n_trials), n_epochs)
    epochs = np.tile(np.arange(1, n_epochs + 1), n_trials)
    out = {"number": numbers.tolist(), "epoch": epochs.tolist()}
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        out[key] = rng.random(n_trials * n_epochs).tolist()
    return out


def test_all_trials_are_one_gapped_webgl_trace_per_split():
    fig = curves_figure(metrics(4, 3), "loss", ["train", "val"])
    assert [t.name for t in fig.data] == ["train: all trials", "val: all trials"]
    trace = fig.data[1]
    assert isinstance(trace, go.Scattergl)
    assert len(trace.x) == 4 * 3 + 4  # one NaN gap after each trial
    assert np.isnan(trace.y[3]) and np.isnan(trace.y[-1])
    assert list(trace.x[:3]) == [1, 2, 3] and list(trace.customdata[:3]) == [0, 0, 0]
    assert count_points(fig) == 2 * 12


def test_best_and_top_trials_get_their_own_traces():
    m = metrics(6, 5)
    fig = curves_figure(m, "acc", ["val"], best_number=2, top_numbers=[2, 4])
    names = [t.name for t in fig.data]
    assert names == ["val: all trials", "val: trial 4", "val: best (trial 2)"]
    best = fig.data[2]
    assert list(best.y) == m["val_acc"][10:15]
    assert count_points(fig) == 30  # every point drawn exactly once
    assert fig.layout.yaxis.title.text == "accuracy"


def test_log_y_axis():
    assert curves_figure(metrics(2, 2), log_y=True).layout.yaxis.type == "log"
    assert curves_figure(metrics(2, 2)).layout.yaxis.type == "linear"


def test_many_trials_are_aggregated_into_a_band():
    fig = curves_figure(metrics(50, 4), "loss", ["val"], best_number=0, max_lines=10)
    names = [t.name for t in fig.data]
    assert names == ["val: 10-90 %", "val: median", "val: best (trial 0)"]
    assert len(fig.data[1].x) == 4 and len(fig.data[0].x) == 8


def test_downsampling_keeps_each_curves_last_epoch():
    fig = curves_figure(metrics(10, 100), "loss", ["val"], max_points=250)
    trace = fig.data[0]
    finite = np.isfinite(np.asarray(trace.y, float))
    assert finite.sum() <= 10 * (100 // 4 + 1)
    x = np.asarray(trace.x, float)
    assert (x[~np.isnan(x)] == 100).sum() == 10  # every curve keeps its last epoch


def test_empty_metrics_and_bad_arguments():
    empty = {"number": [], "epoch": [], "val_loss": [], "train_loss": []}
    assert count_points(curves_figure(empty)) == 0
    with pytest.raises(ValueError, match="metric must be one of"):
        curves_figure(empty, "f1")
    with pytest.raises(ValueError, match="splits"):
        curves_figure(empty, "loss", ["test"])
