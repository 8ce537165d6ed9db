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


def blown(n_trials: int = 6, n_epochs: int = 5, wild=(2, 4), peak: float = 8e5) -> dict:
    """Ordinary losses in [0.1, 2]; the ``wild`` trials blow up to ``peak`` from epoch 3."""
    m = metrics(n_trials, n_epochs)
    for key in ("train_loss", "val_loss"):
        m[key] = [0.1 + 1.9 * v for v in m[key]]
    for i, (number, epoch) in enumerate(zip(m["number"], m["epoch"])):
        if number in wild and epoch >= 3:
            m["val_loss"][i] = peak / (1 + (number == wild[-1]))
    return m


def test_blown_up_trials_are_clipped_flagged_and_counted_by_default():
    """QA: one trial at 8e5 on a linear axis flattened every other curve to a line at 0."""
    m = blown()
    fig = curves_figure(m, "loss", ["train", "val"], best_number=0)
    assert fig.layout.meta["blown_up"] == [2, 4] and fig.layout.meta["y_scale"] == "auto"
    assert fig.layout.yaxis.type == "linear"
    low, high = fig.layout.yaxis.range
    normal = [v for n, v in zip(m["number"], m["val_loss"] + m["train_loss"]) if n not in (2, 4)]
    assert low == 0 and max(normal) < high < 3  # fitted to the normal curves, not to 8e5
    names = [t.name for t in fig.data]
    assert "val: ⚠ blew up" in names and "⚠ clipped peaks" in names
    wild = fig.data[names.index("val: ⚠ blew up")]
    assert set(np.asarray(wild.customdata, float)[np.isfinite(wild.y)]) == {2, 4}
    assert "blew up" in wild.hovertemplate
    ordinary = fig.data[names.index("val: all trials")]
    assert set(np.asarray(ordinary.customdata, float)[np.isfinite(ordinary.y)]) == {1, 3, 5}
    peaks = fig.data[names.index("⚠ clipped peaks")]
    assert list(peaks.x) == [3, 3] and all(y == high for y in peaks.y)
    assert "8e+05" in peaks.text[0] and "4e+05" in peaks.text[1]
    note = fig.layout.meta["note"]
    assert note.startswith("2 trials blew up (loss > 1000), clipped: trial 2 (8.0e5)")
    assert note in fig.layout.title.text
    assert count_points(fig) == 2 * 6 * 5  # every point drawn once, the markers are not curves


def test_the_user_can_switch_to_the_full_linear_or_a_log_axis():
    m = blown()
    full = curves_figure(m, "loss", ["val"], y_scale="linear")
    assert full.layout.yaxis.range is None and full.layout.yaxis.type == "linear"
    assert "⚠ clipped peaks" not in [t.name for t in full.data]
    assert full.layout.meta["note"] == "2 trials blew up (loss > 1000): trial 2 (8.0e5), " \
                                       "trial 4 (4.0e5)"
    log = curves_figure(m, "loss", ["val"], y_scale="log")
    assert log.layout.yaxis.type == "log" and "val: ⚠ blew up" in [t.name for t in log.data]
    assert curves_figure(m, "loss", ["val"], log_y=True).layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="y_scale must be one of"):
        curves_figure(m, y_scale="symlog")


def test_no_blow_up_no_note_and_accuracy_is_never_flagged():
    fig = curves_figure(metrics(4, 3), "loss", ["val"])
    assert fig.layout.meta["blown_up"] == [] and fig.layout.meta["note"] == ""
    assert fig.layout.yaxis.range is None and not fig.layout.title.text
    acc = curves_figure(blown(), "acc", ["val"])
    assert acc.layout.meta["blown_up"] == [] and "⚠" not in " ".join(t.name for t in acc.data)


def test_a_blown_up_best_trial_keeps_its_own_highlight():
    fig = curves_figure(blown(wild=(2,)), "loss", ["val"], best_number=2)
    names = [t.name for t in fig.data]
    assert "val: best (trial 2)" in names and "val: ⚠ blew up" not in names
    assert fig.layout.meta["blown_up"] == [2]


def test_one_spike_far_above_every_curve_goes_off_the_fitted_axis():
    """The demo's digits curves start near 2.4 and fall; one validation point jumped to 35 (no
    blow-up: under 1e3), and on the fitted axis every curve was a flat line at the bottom."""
    m = metrics(6, 10)
    m["val_loss"] = [2.4 * 0.8 ** (e - 1) for e in m["epoch"]]
    m["val_loss"][23] = 35.0
    fig = curves_figure(m, "loss", ["val"])
    low, high = fig.layout.yaxis.range
    assert low == 0 and 2.4 < high < 3
    assert "spikes up to 35 go off the top at 2.59 ('all' shows them)" in fig.layout.meta["note"]
    assert curves_figure(m, "loss", ["val"], y_scale="linear").layout.yaxis.range is None
    m["val_loss"][23] = 4.0  # a curve that rises a little above its start stays whole
    assert curves_figure(m, "loss", ["val"]).layout.yaxis.range is None
