"""Several studies side by side: best-so-far against budget, how varied each search was, and
where each one sampled.

A *study entry* is a dict ``{"name": str, "space": space dict, "trials": [trial dicts],
"created_at": float}`` and usually ``"id"`` (the study dict from
``engine.storage.studies.get_study`` with its ``trials`` added); traces are named ``#id name``,
so two studies of the same name stay apart. Budget is spent in the order trials finished
(``updated_at``), which is what a person waiting for the study experienced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.search import (
    SCORES,
    axis_layout,
    axis_of,
    drawn_values,
    maximize,
    plot_values,
    scored,
)
from engine.search import best_so_far, distinct_values

PALETTE = ("#2f6f4f", "#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
NAME_CHARS = 28
LEGEND_MAX = 4  # half-width charts show a legend up to this many studies


def label(entry: dict) -> str:
    """``#3 Grid 3x3``: the id keeps apart studies of the same name; long names are cut."""
    name = entry["name"]
    if len(name) > NAME_CHARS:
        name = name[: NAME_CHARS - 1].rstrip() + "…"
    return f"#{entry['id']} {name}" if entry.get("id") is not None else name


def _legend_below(fig: go.Figure, n_entries: int, height: int, y: float = -0.15) -> None:
    """A legend under a half-width chart, the chart taller to make room; none past
    ``LEGEND_MAX`` studies (the colours are those of ``best_vs_budget``). At the top, many long
    names wrapped into a scrolled box that covered the bars."""
    if n_entries > LEGEND_MAX:
        fig.update_layout(height=height, showlegend=False)
        return
    fig.update_layout(height=height + 22 * math.ceil(n_entries / 2),
                      legend={"orientation": "h", "yanchor": "top", "y": y, "x": 0})
BUDGETS = {"epochs": "epochs trained (cumulative)", "seconds": "wall time since start (s)"}


def budget_curve(entry: dict, score: str = "best_val_acc", budget: str = "epochs"):
    """(x, best) for one study: cumulative epochs or wall-clock seconds when each trial
    finished, and the best score so far at that point; trials without a score are skipped."""
    done = sorted(scored(entry["trials"], score), key=lambda t: (t["updated_at"], t["number"]))
    if budget == "epochs":
        x = np.cumsum([t["epochs_done"] for t in done]).astype(float)
    elif budget == "seconds":
        x = np.array([t["updated_at"] - entry["created_at"] for t in done], float)
    else:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}, got budget={budget!r}")
    best = best_so_far([t[score] for t in done], maximize=maximize(score))
    return x.tolist(), best


def best_vs_budget(
    entries: Sequence[dict], score: str = "best_val_acc", budget: str = "epochs"
) -> go.Figure:
    """One step line per study: the best score reached against the budget spent."""
    fig = go.Figure()
    for i, entry in enumerate(entries):
        x, best = budget_curve(entry, score, budget)
        fig.add_trace(go.Scatter(x=x, y=best, mode="lines+markers", line_shape="hv",
                                 name=label(entry), marker={"size": 4},
                                 line={"color": PALETTE[i % len(PALETTE)], "width": 2.5}))
    fig.update_layout(xaxis_title=BUDGETS[budget], yaxis_title=f"{SCORES.get(score, score)}"
                      " so far", height=340 + 22 * math.ceil(len(entries) / 4),
                      template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      # under the axis: above it, three rows of names hid the lines near 1.0
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return fig


def distinct_counts(entries: Sequence[dict]) -> tuple[list[str], list[list[int]]]:
    """Parameter names searched by any study, and per study how many distinct values each
    parameter took among its trials (0 when the study did not search it)."""
    names: list[str] = []
    for entry in entries:
        names += [n for n in entry["space"].get("params", {}) if n not in names]
    counts = []
    for entry in entries:
        searched = entry["space"].get("params", {})
        params = [t["params"] for t in entry["trials"]]
        counts.append([distinct_values(params, n) if n in searched else 0 for n in names])
    return names, counts


def distinct_values_figure(entries: Sequence[dict]) -> go.Figure:
    """Grouped bars: distinct values tried per parameter, one bar per study. A 3x3 grid tries
    3 learning rates in 9 trials; random search tries 9."""
    names, counts = distinct_counts(entries)
    # Bars across, the parameters down the side: in half of a 1,024 px page, upright bars of
    # three studies put their counts side by side ("242424") and their slanted names under the
    # legend ("learni")
    fig = go.Figure([
        go.Bar(y=names, x=c, orientation="h", name=label(entry),
               marker_color=PALETTE[i % len(PALETTE)], text=c, textposition="outside",
               textfont={"size": 11}, constraintext="none", cliponaxis=False)
        for i, (entry, c) in enumerate(zip(entries, counts))
    ])
    fig.update_layout(barmode="group", xaxis_title="distinct values tried",
                      template="plotly_white", margin={"l": 10, "r": 30, "t": 30, "b": 10})
    fig.update_yaxes(autorange="reversed", automargin=True)  # the first parameter on top
    # 22 px a bar or more, for the counts in 11 px apart; the legend under the axis title
    height = max(320, 80 + 22 * len(names) * len(entries))
    _legend_below(fig, len(entries), height, y=-0.1 - 60 / height)
    return fig


def overlay_points(entries: Sequence[dict], x: str, y: str) -> go.Figure:
    """Where each study sampled (x against y), one colour per study; the axes follow the first
    study that searched each parameter. Studies that did not search both are left out."""
    ax_x = next(axis_of(e["space"]["params"][x]) for e in entries if x in e["space"]["params"])
    ax_y = next(axis_of(e["space"]["params"][y]) for e in entries if y in e["space"]["params"])
    fig = go.Figure()
    for i, entry in enumerate(entries):
        params = entry["space"].get("params", {})
        if x not in params or y not in params:
            continue
        trials = entry["trials"]
        fig.add_trace(go.Scatter(
            x=plot_values(ax_x, [t["params"].get(x) for t in trials]),
            y=plot_values(ax_y, [t["params"].get(y) for t in trials]),
            mode="markers", name=label(entry),
            marker={"size": 9, "color": PALETTE[i % len(PALETTE)], "opacity": 0.75,
                    "symbol": ("circle", "diamond", "square", "x")[i % 4]},
        ))
    fig.update_layout(xaxis=axis_layout(ax_x, x, drawn_values(fig, "x")),
                      yaxis=axis_layout(ax_y, y, drawn_values(fig, "y")),
                      template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10})
    _legend_below(fig, len(fig.data), 400, y=-0.22)
    return fig
