"""The teaching view's figures: each hidden layer's activations for one input, and that input
marked on a decision boundary (``app.charts.babysit.boundary_figure``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def activations_figure(activations: Sequence[np.ndarray], proba: np.ndarray,
                       class_names: Sequence[str], *, height_per_row: int = 110) -> go.Figure:
    """One row per hidden layer: a heat strip of its units' activations (one cell a unit, a
    dead unit at 0 in white), then the softmax's class probabilities. Row i's heatmap is trace
    i; the probabilities are the last trace, a bar chart."""
    n = len(activations)
    fig = make_subplots(rows=n + 1, cols=1, vertical_spacing=0.12 if n < 3 else 0.06,
                        subplot_titles=[f"hidden layer {i + 1}: {len(a)} units, "
                                        f"{int(np.sum(np.asarray(a) <= 0))} at zero or below"
                                        for i, a in enumerate(activations)]
                        + ["class probabilities"])
    top = max([float(np.max(np.abs(a))) for a in activations if len(a)] + [1e-9])
    for i, a in enumerate(activations):
        a = np.asarray(a, dtype=np.float64)
        fig.add_trace(go.Heatmap(
            z=[a.tolist()], x=list(range(len(a))), y=[f"layer {i + 1}"], zmin=-top, zmax=top,
            colorscale="RdBu", reversescale=True, showscale=i == 0, name=f"layer {i + 1}",
            colorbar={"title": "activation", "len": 0.5},
            hovertemplate=f"layer {i + 1}, unit %{{x}}: %{{z:.3g}}<extra></extra>"),
            row=i + 1, col=1)
        fig.update_yaxes(showticklabels=False, row=i + 1, col=1)
    fig.add_trace(go.Bar(x=list(class_names), y=np.asarray(proba).tolist(), name="P(class)",
                         marker_color="#2f6f4f"), row=n + 1, col=1)
    fig.update_yaxes(range=[0, 1], row=n + 1, col=1)
    for annotation in fig.layout.annotations:
        annotation.font = {"size": 11}
    fig.update_layout(height=height_per_row * (n + 1) + 60, template="plotly_white",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    return fig


def mark_input(fig: go.Figure, point: Sequence[float], label: str) -> go.Figure:
    """The chosen input as a big star on a boundary figure (original coordinates)."""
    fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name=label,
                             marker={"symbol": "star", "size": 18, "color": "gold",
                                     "line": {"color": "black", "width": 1.5}}))
    return fig
