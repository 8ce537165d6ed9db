"""app/charts/inspector: batch-norm histograms and statistics, softmax bars, confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from app.charts.inspector import (
    bn_histograms_figure,
    bn_stats_figure,
    confusion_figure,
    experiment_figure,
    mode_accuracy_figure,
    probabilities_figure,
)


def test_bn_histograms_before_and_after_in_both_modes(rng):
    z = rng.normal(3, 2, size=(40, 5))
    fig = bn_histograms_figure(z, (z - 3) / 2, z, (z - 1) / 4)
    assert [t.type for t in fig.data] == ["histogram"] * 4
    assert [t.xaxis for t in fig.data] == ["x", "x", "x2", "x2"]
    assert [t.name for t in fig.data] == ["training mode", "evaluation mode"] * 2
    assert len(fig.data[0].x) == 200 and fig.layout.barmode == "overlay"
    one = bn_histograms_figure(z, z, z, z, features=[2])
    np.testing.assert_array_equal(one.data[0].x, z[:, 2])


def test_bn_histograms_drop_non_finite_values():
    z = np.array([[1.0, np.inf], [np.nan, 2.0]])
    fig = bn_histograms_figure(z, z, z, z)
    assert sorted(fig.data[0].x) == [1.0, 2.0]


def test_bn_stats_per_unit(rng):
    fig = bn_stats_figure(rng.normal(size=6), np.zeros(6), rng.uniform(size=6), np.ones(6))
    assert [t.type for t in fig.data] == ["bar", "scatter", "bar", "scatter"]
    assert list(fig.data[1].y) == [0] * 6 and list(fig.data[3].y) == [1] * 6
    assert list(fig.data[0].x) == list(range(6))
    assert fig.data[2].yaxis == "y2"


def test_mode_accuracy():
    fig = mode_accuracy_figure(0.9, 0.5)
    assert list(fig.data[0].x) == [0.9, 0.5]
    assert list(fig.data[0].text) == ["90.0%", "50.0%"]


def test_experiment_curves_have_a_log_loss_axis():
    with_bn = [{"epoch": 0, "train_loss": None, "val_loss": None},
               {"epoch": 1, "train_loss": 0.7, "val_loss": 0.8},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6}]
    without = [{"epoch": 1, "train_loss": 5.0, "val_loss": 6.0}]
    fig = experiment_figure({"with batch norm": with_bn, "without batch norm": without})
    assert len(fig.data) == 4
    assert fig.layout.yaxis.type == "log"
    assert list(fig.data[0].x) == [1, 2]  # the untrained root is skipped
    assert fig.data[0].line.color != fig.data[2].line.color


def test_soft_max_next_to_hard_max():
    proba = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])
    fig = probabilities_figure(proba, ["a", "b", "c"], ["sample 3", "sample 9"])
    assert len(fig.data) == 4
    soft = [t for t in fig.data if t.xaxis == "x"]
    hard = [t for t in fig.data if t.xaxis == "x2"]
    np.testing.assert_allclose(soft[0].y, [0.2, 0.5, 0.3])
    assert list(hard[0].y) == [0, 1, 0] and list(hard[1].y) == [1, 0, 0]
    assert sum(sum(t.y) for t in hard) == pytest.approx(2.0)


def test_confusion_matrix_heatmap():
    cm = np.array([[5, 1], [0, 4]])
    fig = confusion_figure(cm, ["no", "yes"])
    heat = fig.data[0]
    assert heat.type == "heatmap"
    np.testing.assert_array_equal(heat.text, cm)
    np.testing.assert_allclose(heat.z, [[5 / 6, 1 / 6], [0, 1]])
    assert fig.layout.yaxis.autorange == "reversed"
    empty = confusion_figure(np.zeros((2, 2), int), ["no", "yes"])
    assert np.isfinite(np.asarray(empty.data[0].z)).all()
