"""Dataset previews: a 2-D scatter of a toy set, a mosaic of digit images, class counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

CLASS_COLORS = ("#2f6f4f", "#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")


def scatter_2d(
    X: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    feature_names: Sequence[str] = ("x1", "x2"),
) -> go.Figure:
    """X (N, 2), y (N,) ints -> one marker trace per class."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    fig = go.Figure()
    for k, name in enumerate(class_names):
        mask = y == k
        fig.add_trace(go.Scattergl(
            x=X[mask, 0], y=X[mask, 1], mode="markers", name=f"class {name}",
            marker={"size": 6, "color": CLASS_COLORS[k % len(CLASS_COLORS)], "opacity": 0.8},
        ))
    fig.update_layout(xaxis_title=feature_names[0], yaxis_title=feature_names[1], height=420,
                      template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis={"scaleanchor": "x", "scaleratio": 1})
    return fig


def mosaic(images: np.ndarray, columns: int = 10, gap: int = 1) -> np.ndarray:
    """Tile images (N, h, w) into one (rows*(h+gap)-gap, columns*(w+gap)-gap) array, NaN gaps."""
    images = np.asarray(images, dtype=np.float64)
    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = images[i]
    return out


def digits_grid(images: np.ndarray, labels: Sequence[int], columns: int = 10) -> go.Figure:
    """A mosaic of 8x8 digit images (dark ink on white) in one heatmap, labels on hover."""
    images = np.asarray(images)
    tiles = mosaic(images, columns)
    h, w = images.shape[1:]
    label_grid = np.full(tiles.shape, "", dtype=object)
    for i, label in enumerate(labels):
        r, c = divmod(i, columns)
        label_grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = str(label)
    fig = go.Figure(go.Heatmap(z=tiles, colorscale="Greys", showscale=False, customdata=label_grid,
                               hovertemplate="digit %{customdata}<extra></extra>"))
    rows = -(-len(images) // columns)
    fig.update_layout(height=40 + 44 * rows, template="simple_white",
                      margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis={"visible": False}, yaxis={"visible": False, "autorange": "reversed",
                                                      "scaleanchor": "x"})
    return fig


def class_counts(class_names: Sequence[str], train: Sequence[int], val: Sequence[int]) -> go.Figure:
    """Stacked bars: training and validation examples per class."""
    names = [str(c) for c in class_names]
    fig = go.Figure([
        go.Bar(x=names, y=list(train), name="training", marker_color="#2f6f4f"),
        go.Bar(x=names, y=list(val), name="validation", marker_color="#9ccfb4"),
    ])
    fig.update_layout(barmode="stack", xaxis_title="class", yaxis_title="examples", height=260,
                      xaxis={"type": "category"}, template="plotly_white",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": 1.15})
    return fig
