"""Charts of the model inspector: batch norm inside a layer, softmax outputs, an experiment.

Pure functions: arrays (from ``engine.introspect``) or curve points (from
``engine.babysit.session_curves``) in, a ``plotly.graph_objects.Figure`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.ticks import log_ticks

TRAIN_MODE = "#1f77b4"  # training mode: batch statistics
EVAL_MODE = "#ff7f0e"  # evaluation mode: running averages
RUN_COLORS = ("#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _flat(a: np.ndarray, features: Sequence[int] | None) -> np.ndarray:
    a = np.asarray(a)
    if features is not None:
        a = a[:, list(features)]
    a = a.ravel()
    return a[np.isfinite(a)]


def bn_histograms_figure(
    z_train: np.ndarray,
    z_hat_train: np.ndarray,
    z_eval: np.ndarray,
    z_hat_eval: np.ndarray,
    *,
    features: Sequence[int] | None = None,
    height: int = 320,
) -> go.Figure:
    """Pre-activations of one layer (N, H) before (left) and after (right) normalisation, in
    training mode (batch statistics) and evaluation mode (running averages), overlaid.

    ``features`` picks columns (units); None pools all of them. Four histogram traces.
    """
    # short titles in 13 px: at 1,024 px each panel is ~165 px wide, and "before batch norm:
    # z" ran into "after normalisation: (z − mean) / std" (16 px, 280 px long)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("before: z", "after: (z − mean) / std"))
    fig.update_annotations(font_size=13)
    for col, (train, evaluation) in enumerate(((z_train, z_eval), (z_hat_train, z_hat_eval)), 1):
        for data, mode, color in ((train, "training mode", TRAIN_MODE),
                                  (evaluation, "evaluation mode", EVAL_MODE)):
            fig.add_trace(
                go.Histogram(
                    x=_flat(data, features), name=mode, legendgroup=mode, showlegend=col == 1,
                    marker_color=color, opacity=0.55, nbinsx=50, histnorm="probability density",
                ),
                row=1, col=col,
            )
    fig.update_layout(barmode="overlay", height=height, margin={"l": 40, "r": 10, "t": 30,
                                                                "b": 30},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def bn_stats_figure(
    batch_mean: np.ndarray,
    running_mean: np.ndarray,
    batch_var: np.ndarray,
    running_var: np.ndarray,
    *,
    height: int = 360,
) -> go.Figure:
    """Per unit of one layer: batch mean and variance (this data as one batch) against the
    running averages the model uses in evaluation mode. Two rows, four traces."""
    units = np.arange(len(batch_mean))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("mean of z per unit", "variance of z per unit"))
    for row, (batch, running) in enumerate(((batch_mean, running_mean),
                                            (batch_var, running_var)), 1):
        fig.add_trace(go.Bar(x=units, y=np.asarray(batch), name="batch statistic",
                             legendgroup="batch", showlegend=row == 1,
                             marker_color=TRAIN_MODE, opacity=0.7), row=row, col=1)
        fig.add_trace(go.Scatter(x=units, y=np.asarray(running), name="running average",
                                 legendgroup="running", showlegend=row == 1, mode="markers",
                                 marker={"color": EVAL_MODE, "symbol": "line-ew-open",
                                         "size": 14, "line": {"width": 3, "color": EVAL_MODE}}),
                      row=row, col=1)
    fig.update_xaxes(title_text="unit", row=2, col=1)
    fig.update_layout(height=height, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, bargap=0.15)
    return fig


def mode_accuracy_figure(train_mode: float, eval_mode: float, *, height: int = 220) -> go.Figure:
    """Two bars: accuracy with batch statistics vs with the running averages."""
    fig = go.Figure(go.Bar(
        x=[train_mode, eval_mode], y=["training mode", "evaluation mode"], orientation="h",
        marker_color=[TRAIN_MODE, EVAL_MODE], text=[f"{train_mode:.1%}", f"{eval_mode:.1%}"],
        textposition="auto",
    ))
    fig.update_layout(height=height, xaxis={"range": [0, 1], "title": "accuracy",
                                            "tickformat": ".0%"},
                      margin={"l": 110, "r": 10, "t": 10, "b": 40})
    return fig


def experiment_figure(
    runs: Mapping[str, Sequence[Mapping]], *, height: int = 380
) -> go.Figure:
    """Loss per epoch of a few runs (label -> points with epoch, train_loss, val_loss).

    One row, a log loss axis; per run a validation line (solid) and a training line (dotted).
    Points with a missing loss (the untrained root) are skipped.
    """
    fig = go.Figure()
    for i, (label, points) in enumerate(runs.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        points = [p for p in points if p.get("val_loss") is not None]
        for key, dash, what in (("val_loss", "solid", "val"), ("train_loss", "dot", "train")):
            fig.add_trace(go.Scatter(
                x=[p["epoch"] for p in points], y=[p[key] for p in points],
                name=f"{label} ({what})", legendgroup=label, mode="lines+markers",
                line={"color": color, "dash": dash}, marker={"size": 4},
            ))
    losses = [v for trace in fig.data for v in trace.y]
    ticks = log_ticks(losses, 7) or {"dtick": "D2", "tickformat": ".2g"}
    fig.update_layout(height=height, yaxis={"type": "log", "title": "loss", **ticks},
                      xaxis={"title": "epoch"}, margin={"l": 50, "r": 10, "t": 10, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def probabilities_figure(
    proba: np.ndarray,
    class_names: Sequence[str],
    sample_labels: Sequence[str],
    *,
    height: int = 340,
) -> go.Figure:
    """Soft max (left: the probabilities) next to hard max (right: one-hot of the argmax) for
    a few samples. proba (S, C); one bar trace per sample in each panel (2 * S traces)."""
    proba = np.asarray(proba, dtype=float)
    hard = np.zeros_like(proba)
    hard[np.arange(len(proba)), proba.argmax(axis=1)] = 1.0
    names = [str(c) for c in class_names]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True,
                        subplot_titles=("soft max: probabilities", "hard max: one-hot argmax"))
    for col, values in ((1, proba), (2, hard)):
        for s, label in enumerate(sample_labels):
            fig.add_trace(go.Bar(
                x=names, y=values[s], name=str(label), legendgroup=str(label),
                showlegend=col == 1, marker_color=RUN_COLORS[s % len(RUN_COLORS)]
                if len(sample_labels) <= len(RUN_COLORS) else None,
                hovertemplate="class %{x}: %{y:.3f}<extra>" + str(label) + "</extra>",
            ), row=1, col=col)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(type="category", title_text="class")
    fig.update_layout(barmode="group", height=height,
                      margin={"l": 40, "r": 10, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def confusion_figure(
    confusion: np.ndarray, class_names: Sequence[str], *, height: int = 420
) -> go.Figure:
    """Confusion matrix (C, C), rows = true class (top to bottom), columns = predicted class,
    coloured by the fraction of each true class, annotated with the counts."""
    cm = np.asarray(confusion)
    row_sums = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, row_sums, out=np.zeros(cm.shape, float), where=row_sums > 0)
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, text=cm, texttemplate="%{text}", colorscale="Blues",
        zmin=0, zmax=1, colorbar={"title": "share of row"},
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
    ))
    fig.update_layout(
        height=height, margin={"l": 60, "r": 10, "t": 10, "b": 50},
        xaxis={"title": "predicted class", "type": "category"},
        yaxis={"title": "true class", "type": "category", "autorange": "reversed"},
    )
    return fig
