"""What a search that learns believes, drawn from its stored ``describe()`` (``study["belief"]``).

Pure functions (plain data in, a Plotly figure out), tested without a browser:

- :func:`slices_figure`: for ``gp`` and ``tpe``, one panel per searched parameter: the model's
  predicted score along that parameter (the others held at the best trial's point), as a line
  with a band, over the observed trials' scores; each x axis on the parameter's own scale (log
  for a learning rate, ``1 - beta`` reversed for a beta, categories for a choice).
- :func:`zoom_rounds_figure`: for ``zoom``, two parameters' sampled points with the box of each
  round outlined, darker for later (smaller) rounds.

Belief dicts are those of docs/CONTRACTS.md (``engine.search`` samplers that learn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.search import axis_layout, axis_of, box_trace, pair_scatter, plot_values

MEAN_COLOR = "#1f77b4"
BAND_COLOR = "rgba(31, 119, 180, 0.18)"
OBSERVED_COLOR = "#444444"
ROUND_COLORS = ("#fdae6b", "#f16913", "#d94801", "#a63603", "#7f2704")


def slices_figure(belief: dict, space: dict, columns: int = 3) -> go.Figure:
    """One panel per parameter of ``belief["slices"]`` (see the module docstring). Panel ``i``
    has the traces ``band`` (a closed polygon low -> high), ``mean`` and ``observed``."""
    slices = belief.get("slices") or {}
    names = [n for n in slices if n in space.get("params", {})]
    rows = max(1, math.ceil(len(names) / columns))
    cols = min(columns, max(1, len(names)))
    # no subplot titles: each panel's x axis is titled with its parameter already (on its own
    # scale: "1 - beta1"), and a title above as well said the same thing twice
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.05,
                        vertical_spacing=0.2)
    observed = belief.get("observed") or []
    through = belief.get("through") or {}
    for i, name in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        axis = axis_of(space["params"][name])
        s = slices[name]
        x = plot_values(axis, s["values"])
        first = i == 0
        if axis.axis_type == "category":  # a band between categories means nothing: bars
            fig.add_trace(go.Scatter(
                x=x, y=s["mean"], mode="markers", name="predicted (2 sd)", legendgroup="mean",
                showlegend=first, marker={"color": MEAN_COLOR, "size": 10, "symbol": "line-ew",
                                          "line": {"width": 3, "color": MEAN_COLOR}},
                error_y={"type": "data", "symmetric": False,
                         "array": [h - m for h, m in zip(s["high"], s["mean"])],
                         "arrayminus": [m - lo for m, lo in zip(s["mean"], s["low"])],
                         "color": MEAN_COLOR}),
                row=row, col=col)
        else:
            fig.add_trace(go.Scatter(
                x=[*x, *x[::-1]], y=[*s["high"], *s["low"][::-1]], fill="toself",
                fillcolor=BAND_COLOR, line={"width": 0}, hoverinfo="skip", name="band (2 sd)",
                legendgroup="band", showlegend=first), row=row, col=col)
            fig.add_trace(go.Scatter(
                x=x, y=s["mean"], mode="lines", line={"color": MEAN_COLOR, "width": 2},
                name="predicted score", legendgroup="mean", showlegend=first,
                hovertemplate=f"{name}=%{{x}}<br>predicted %{{y:.4g}}<extra></extra>"),
                row=row, col=col)
        ox = plot_values(axis, [o["params"].get(name) for o in observed])
        fig.add_trace(go.Scatter(
            x=ox, y=[o["score"] for o in observed], mode="markers", name="observed trials",
            legendgroup="observed", showlegend=first,
            marker={"color": OBSERVED_COLOR, "size": 5, "opacity": 0.55},
            hovertemplate=f"{name}=%{{x}}<br>score %{{y:.4g}}<extra></extra>"),
            row=row, col=col)
        best = [o for o in observed if o["params"] == through]
        if best:
            fig.add_trace(go.Scatter(
                x=plot_values(axis, [through.get(name)]), y=[best[0]["score"]], mode="markers",
                name="slice through (best trial)", legendgroup="through", showlegend=first,
                marker={"size": 13, "color": "rgba(0,0,0,0)",
                        "line": {"color": "#d62728", "width": 2}}, hoverinfo="skip"),
                row=row, col=col)
        layout = axis_layout(axis, name, [*x, *ox], max_ticks=5)
        fig.update_xaxes(**layout, row=row, col=col)
    fig.update_yaxes(title_text="score", col=1)
    fig.update_layout(height=250 * rows + 60, template="plotly_white",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": 1.1})
    return fig


def round_boxes(belief: dict) -> list[tuple[int, dict]]:
    """``(round, box dict)`` of every zoom round after the first that has a box, in order."""
    return [(r["round"], r["box"]) for r in (belief or {}).get("rounds", [])
            if r.get("round", 0) >= 1 and r.get("box")]


def zoom_rounds_figure(
    trials: Sequence[dict], space: dict, x: str, y: str, belief: dict,
    score: str = "best_val_acc",
) -> go.Figure:
    """The sampled points of ``x`` against ``y`` (``pair_scatter``) with each zoom round's box
    outlined, named ``round r box`` (a choice axis has no outline: its box is a set of options)."""
    fig = pair_scatter(trials, space, x, y, score)
    boxes = round_boxes(belief)
    for k, (r, box) in enumerate(boxes):
        outline = box_trace(box, space, x, y)
        if outline is None:
            continue
        color = ROUND_COLORS[min(k, len(ROUND_COLORS) - 1)]
        outline.update(name=f"round {r} box", line={"color": color, "width": 2,
                                                     "dash": "solid" if k == len(boxes) - 1
                                                     else "dash"})
        fig.add_trace(outline)
    return fig


def rounds_table(belief: dict, space: dict) -> list[dict]:
    """One row per zoom round: its number, first trial, box width (share of each unit axis) and
    the values each parameter's box covers."""
    rows = []
    for r in (belief or {}).get("rounds", []):
        row = {"round": r["round"], "from trial": r["first_trial"],
               "box width": f"{100 * r['width']:.0f}%"}
        values = (r.get("box") or {}).get("values", {})
        for name in space.get("params", {}):
            v = values.get(name)
            row[name] = "whole range" if r["round"] == 0 else "waiting for results" \
                if v is None else _span(v)
        rows.append(row)
    return rows


def _span(values: Sequence) -> str:
    if len(values) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                for v in values):
        return f"{values[0]:.3g} .. {values[1]:.3g}"
    return ", ".join(str(v) for v in values)
