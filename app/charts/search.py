"""Where a search looked and what it found, each parameter on its own scale.

Inputs are plain data: a space dict (``Space.to_dict()``: ``{"params": {name: dimension dict},
"fixed": {...}}``) and trial dicts as ``engine.storage.studies.list_trials`` returns them
(``number``, ``state``, ``params``, ``best_val_acc``, ``best_val_loss``, ``epochs_done`` ...).
The score is a trial field, ``best_val_acc`` (higher is better) or ``best_val_loss``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.ticks import log_ticks
from engine.search import AxisInfo, best_so_far, dimension_from_dict

SCORES = {"best_val_acc": "best validation accuracy", "best_val_loss": "best validation loss"}
COLORSCALE = "Viridis"
MANY_POINTS = 1500  # above this, scatter plots switch to WebGL
BOX_COLOR = "#d62728"


def maximize(score: str) -> bool:
    """Whether a higher ``score`` is better (accuracies) or a lower one (losses)."""
    return not score.endswith("loss")


def axis_of(dim: dict) -> AxisInfo:
    """The chart axis of a dimension dict (``{"type": "float", "low", "high", "scale"}``)."""
    return dimension_from_dict(dim).axis


def axis_layout(
    axis: AxisInfo, name: str, values: Sequence = (), max_ticks: int = 6
) -> dict:
    """Plotly axis settings for a parameter: type, title, direction, category order; a log
    axis gets full-value tick labels chosen from the plotted ``values`` (see ``ticks``)."""
    out: dict[str, Any] = {"type": axis.axis_type, "title": {"text": axis.title(name)}}
    if axis.reversed:
        out["autorange"] = "reversed"
    if axis.axis_type == "log":
        out["exponentformat"] = "e"  # 1e-04 rather than SI prefixes (100µ)
        out.update(log_ticks(values, max_ticks))
    if axis.axis_type == "category":
        out.update(categoryorder="array", categoryarray=list(axis.categories))
    return out


def plot_values(axis: AxisInfo, values: Sequence) -> list:
    """The coordinates to plot for raw parameter values (``1 - v`` for one_minus, str for
    categories); None where a value is missing."""
    if axis.axis_type == "category":
        return [None if v is None else str(v) for v in values]
    out = []
    for v in values:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        out.append(float(axis.apply(v)) if ok else None)
    return out


def _scatter(n_points: int):
    return go.Scattergl if n_points > MANY_POINTS else go.Scatter


def plot_array(axis: AxisInfo, values: Sequence) -> np.ndarray:
    """``plot_values`` as an array (floats with NaN for missing values; str objects for a
    category axis): Plotly copies and serialises an array at once, where a list of 1,000
    Python numbers is validated item by item (most of a big figure's cost)."""
    if axis.axis_type == "category":
        return np.array(plot_values(axis, values), dtype=object)
    return np.array([np.nan if v is None else v for v in plot_values(axis, values)], float)


def searched_names(space: dict) -> list[str]:
    return list(space.get("params", {}))


def scored(trials: Sequence[dict], score: str) -> list[dict]:
    """Trials that have a score, in number order."""
    return [t for t in trials if t.get(score) is not None]


def best_trial(trials: Sequence[dict], score: str = "best_val_acc") -> dict | None:
    """The trial with the best score (ties: the lower number), or None."""
    have = scored(trials, score)
    if not have:
        return None
    sign = -1.0 if maximize(score) else 1.0
    return min(have, key=lambda t: (sign * t[score], t["number"]))


def _jitter(n: int) -> np.ndarray:
    """Deterministic vertical spread in [0.1, 0.9] so points on a strip do not overlap."""
    return 0.1 + 0.8 * ((np.arange(n) * 0.6180339887) % 1.0)


def sampler_preview(name: str, dim: dict, values: Sequence) -> go.Figure:
    """Where ``values`` (samples of one parameter) land: on the parameter's own scale, and, for
    log scales, the same points on a plain linear axis below, where they bunch up at the low end.
    A Choice gets a bar of how often each option was drawn."""
    axis = axis_of(dim)
    if axis.axis_type == "category":
        counts = {c: 0 for c in axis.categories}
        for v in values:
            counts[str(v)] = counts.get(str(v), 0) + 1
        fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color="#2f6f4f"))
        fig.update_layout(xaxis=axis_layout(axis, name), yaxis_title="samples")
        return _compact(fig, 160)
    y = _jitter(len(values))
    own = plot_values(axis, values)
    rows = 1 if axis.axis_type == "linear" else 2
    # short, in plain words: at 1,024 px "the same points on a linear axis of learning_rate"
    # ran out of its chart; a beta's axis (1 - beta) is on a log scale, not "one_minus_log"
    titles = [f"{axis.title(name)} on a {'linear' if rows == 1 else 'log'} scale"]
    if rows == 2:
        titles.append("the same points on a linear axis")
    fig = make_subplots(rows=rows, cols=1, subplot_titles=titles, vertical_spacing=0.38)
    marker = {"size": 6, "color": "#2f6f4f", "opacity": 0.75}
    for row in range(1, rows + 1):
        fig.add_trace(
            go.Scatter(x=own, y=y, mode="markers", marker=marker, name=name, showlegend=False,
                       hovertemplate=f"{name}=%{{customdata:.4g}}<extra></extra>",
                       customdata=list(values)),
            row=row, col=1,
        )
        fig.update_yaxes(visible=False, range=[0, 1], row=row, col=1)
    top = axis_layout(axis, name, own)
    top.pop("title")
    fig.update_xaxes(**top, row=1, col=1)
    if rows == 2:
        fig.update_xaxes(type="linear", autorange="reversed" if axis.reversed else True,
                         row=2, col=1)
    for annotation in fig.layout.annotations:
        annotation.font = {"size": 11}
    return _compact(fig, 80 * rows + 40)


def _compact(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 22, "b": 4},
                      template="plotly_white")
    return fig


def _trial_hover(trials: Sequence[dict], score: str) -> tuple[np.ndarray, str]:
    custom = np.empty((len(trials), 2), dtype=object)  # (N, 2): number, state
    custom[:, 0] = [t["number"] for t in trials]
    custom[:, 1] = [t["state"] for t in trials]
    return custom, f"trial %{{customdata[0]}} (%{{customdata[1]}})<br>{score}=%{{y:.4g}}"


def params_vs_score(
    trials: Sequence[dict], space: dict, score: str = "best_val_acc", columns: int = 3
) -> go.Figure:
    """One panel per searched parameter: its value (x, on its scale) against the score (y);
    the best trial is circled. Panel ``i``'s x axis is ``xaxis{i+1}``."""
    names = searched_names(space)
    have = scored(trials, score)
    rows = max(1, math.ceil(len(names) / columns))
    cols = min(columns, max(1, len(names)))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.04,
                        vertical_spacing=0.18)
    best = best_trial(have, score)
    scores = np.array([t[score] for t in have], float)
    custom, hover = _trial_hover(have, score)
    for i, name in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        axis = axis_of(space["params"][name])
        x = plot_array(axis, [t["params"].get(name) for t in have])
        fig.add_trace(
            _scatter(len(have))(
                x=x, y=scores, mode="markers", name=name, showlegend=False,
                marker={"size": 7, "color": scores, "colorscale": COLORSCALE,
                        "reversescale": not maximize(score), "opacity": 0.8},
                customdata=custom, hovertemplate=hover + f"<br>{name}=%{{x}}<extra></extra>",
            ),
            row=row, col=col,
        )
        if best is not None:
            fig.add_trace(
                go.Scatter(x=plot_values(axis, [best["params"].get(name)]), y=[best[score]],
                           mode="markers", showlegend=i == 0, name=f"best: trial {best['number']}",
                           marker={"size": 14, "color": "rgba(0,0,0,0)",
                                   "line": {"color": BOX_COLOR, "width": 2}}),
                row=row, col=col,
            )
        fig.update_xaxes(**axis_layout(axis, name, x, max_ticks=5), row=row, col=col)
    fig.update_yaxes(title_text=SCORES.get(score, score), col=1)
    fig.update_layout(height=260 * rows + 40, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      template="plotly_white", legend={"orientation": "h", "y": 1.08})
    return fig


def box_trace(box: dict, space: dict, x: str, y: str) -> go.Scatter | None:
    """The zoom box of a coarse-to-fine child as a closed red outline in (x, y) value
    coordinates, or None if it does not cover both parameters numerically."""
    values = box.get("values", {}) if box else {}
    ax_x, ax_y = axis_of(space["params"][x]), axis_of(space["params"][y])
    if x not in values or y not in values or "category" in (ax_x.axis_type, ax_y.axis_type):
        return None
    (x0, x1), (y0, y1) = (plot_values(ax_x, values[x]), plot_values(ax_y, values[y]))
    return go.Scatter(
        x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", name="zoom box",
        line={"color": BOX_COLOR, "width": 2, "dash": "dash"}, hoverinfo="skip",
    )


TRY_MARK = "try"  # customdata[0] of the invisible "try here" grid's points
TRY_CELLS = 24  # grid points per numeric axis


def try_grid_trace(space: dict, x: str, y: str, cells: int = TRY_CELLS) -> go.Scatter:
    """Invisible points on a grid over the (x, y) plane (cell centres in unit space, so each
    axis on its scale; a Choice: every option), so a click on an empty spot of the chart
    selects the nearest cell: ``customdata = ["try", x value, y value]``."""
    dx, dy = dimension_from_dict(space["params"][x]), dimension_from_dict(space["params"][y])
    xs = list(dict.fromkeys(dx.from_unit(float(u)) for u in dx.grid_units(cells)))
    ys = list(dict.fromkeys(dy.from_unit(float(u)) for u in dy.grid_units(cells)))
    cells_xy = [(a, b) for a in xs for b in ys]
    custom = np.empty((len(cells_xy), 3), dtype=object)  # (G, 3): "try", x value, y value
    custom[:, 0] = TRY_MARK
    custom[:, 1] = [a for a, _ in cells_xy]
    custom[:, 2] = [b for _, b in cells_xy]
    return go.Scatter(
        x=plot_array(dx.axis, [a for a, _ in cells_xy]),
        y=plot_array(dy.axis, [b for _, b in cells_xy]),
        mode="markers", name="try here", showlegend=False,
        marker={"size": 12, "opacity": 0, "color": "#000000"},
        customdata=custom,
        hovertemplate=f"try here: {x}=%{{customdata[1]:.4g}}, {y}=%{{customdata[2]:.4g}}"
        "<extra></extra>" if "category" not in (dx.axis.axis_type, dy.axis.axis_type) else
        f"try here: {x}=%{{customdata[1]}}, {y}=%{{customdata[2]}}<extra></extra>",
    )


def pair_scatter(
    trials: Sequence[dict],
    space: dict,
    x: str,
    y: str,
    score: str = "best_val_acc",
    *,
    box: dict | None = None,
    child_trials: Sequence[dict] = (),
    try_here: bool = False,
) -> go.Figure:
    """Two parameters against each other, coloured by score (both axes on their scales).

    With ``box`` (a coarse-to-fine box dict, ``{"unit", "values"}``) the zoom box is outlined;
    ``child_trials`` (the child study's trials) are drawn as diamonds on the same axes;
    ``try_here`` lays the invisible grid of ``try_grid_trace`` under the points.
    """
    ax_x, ax_y = axis_of(space["params"][x]), axis_of(space["params"][y])
    have = scored(trials, score)
    unscored = [t for t in trials if t.get(score) is None]
    fig = go.Figure()
    if try_here and x != y:
        fig.add_trace(try_grid_trace(space, x, y))
    if unscored:
        fig.add_trace(go.Scatter(
            x=plot_values(ax_x, [t["params"].get(x) for t in unscored]),
            y=plot_values(ax_y, [t["params"].get(y) for t in unscored]),
            mode="markers", name="not scored yet",
            marker={"size": 6, "color": "#bbbbbb", "symbol": "circle-open"},
        ))
    groups = [("parent" if child_trials else "trials", have, "circle")]
    if child_trials:
        groups.append(("child", scored(child_trials, score), "diamond"))
    all_scores = [t[score] for _, group, _ in groups for t in group]
    lo, hi = (min(all_scores), max(all_scores)) if all_scores else (0.0, 1.0)
    for label, group, symbol in groups:
        custom, hover = _trial_hover(group, score)
        fig.add_trace(_scatter(len(group))(
            x=plot_array(ax_x, [t["params"].get(x) for t in group]),
            y=plot_array(ax_y, [t["params"].get(y) for t in group]),
            mode="markers", name=label,
            marker={"size": 9, "symbol": symbol,
                    "color": np.array([t[score] for t in group], float),
                    "cmin": lo, "cmax": hi, "colorscale": COLORSCALE,
                    "reversescale": not maximize(score),
                    "colorbar": {"title": {"text": SCORES.get(score, score)}},
                    "line": {"width": 0.5, "color": "#333"}},
            customdata=custom,
            hovertemplate=f"trial %{{customdata[0]}}<br>{x}=%{{x:.4g}}<br>{y}=%{{y:.4g}}"
            "<extra></extra>",
        ))
    if box:
        outline = box_trace(box, space, x, y)
        if outline is not None:
            fig.add_trace(outline)
    fig.update_layout(xaxis=axis_layout(ax_x, x, drawn_values(fig, "x"), max_ticks=8),
                      yaxis=axis_layout(ax_y, y, drawn_values(fig, "y"), max_ticks=7),
                      height=420,
                      template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": 1.08})
    return fig


def drawn_values(fig: go.Figure, coordinate: str) -> list:
    """Every ``x`` (or ``y``) value the figure's traces draw, to choose an axis's ticks."""
    out: list = []
    for trace in fig.data:
        values = getattr(trace, coordinate, None)
        if values is not None:
            out.extend(np.asarray(values, dtype=object).tolist())
    return out


def _parcoords_dimension(name: str, dim: dict, values: Sequence) -> dict:
    axis = axis_of(dim)
    if axis.axis_type == "category":
        index = {c: i for i, c in enumerate(axis.categories)}
        codes = np.array([index.get(str(v), np.nan) for v in values], float)
        return {"label": name, "values": codes, "tickvals": list(range(len(index))),
                "ticktext": list(axis.categories), "range": [-0.5, len(index) - 0.5]}
    plotted = np.array([np.nan if v is None else v for v in plot_values(axis, values)], float)
    if axis.axis_type != "log":
        return {"label": name, "values": plotted}
    # Parcoords has no log axes: plot log10 and label the ticks with the values themselves.
    logs = np.log10(plotted)
    bounds = np.log10(np.sort(np.array(axis.apply([dim["low"], dim["high"]]), float)))
    lo, hi = math.floor(bounds[0]), math.ceil(bounds[1])
    ticks = list(range(lo, hi + 1))
    text = [f"{1 - 10.0**k:g}" if axis.transform == "one_minus" else f"{10.0**k:g}" for k in ticks]
    out = {"label": f"{axis.title(name)} (log)", "values": logs, "tickvals": ticks,
           "ticktext": text, "range": [float(bounds[0]), float(bounds[1])]}
    if axis.transform == "one_minus":
        out["range"] = out["range"][::-1]  # larger betas at the top, as on the other charts
    return out


def constraint_range(dim: dict, wanted: dict) -> list:
    """A range filter (``{"low", "high"}`` in parameter values, or ``{"options": [...]}``) as
    a parcoords ``constraintrange`` in the axis's plotted coordinates (log10 on a log axis,
    option codes for a Choice: one short range per kept option)."""
    axis = axis_of(dim)
    if axis.axis_type == "category":
        index = {c: i for i, c in enumerate(axis.categories)}
        codes = sorted(index[str(o)] for o in wanted["options"] if str(o) in index)
        return [[c - 0.25, c + 0.25] for c in codes]
    ends = plot_values(axis, [wanted["low"], wanted["high"]])
    if axis.axis_type == "log":  # the axis is log10 (parcoords has no log axes)
        floor = min(plot_values(axis, [dim["low"], dim["high"]]))
        ends = [math.log10(v if v is not None and v > 0 else floor) for v in ends]
    return sorted(float(v) for v in ends)


def parallel_coordinates(
    trials: Sequence[dict], space: dict, score: str = "best_val_acc",
    ranges: dict | None = None,
) -> go.Figure:
    """Every scored trial as a line through its parameters (each on its scale) to its score;
    ``ranges`` (``app.views.ranges``: ``{name: {"low", "high"} | {"options"}}``) are drawn on
    their axes as ``constraintrange``s."""
    have = scored(trials, score)
    dims = [
        _parcoords_dimension(name, space["params"][name], [t["params"].get(name) for t in have])
        for name in searched_names(space)
    ]
    for name, dim in zip(searched_names(space), dims):
        if name in (ranges or {}):
            dim["constraintrange"] = constraint_range(space["params"][name], ranges[name])
    scores = np.array([t[score] for t in have], float)  # arrays: no per-item validation
    dims.append({"label": SCORES.get(score, score), "values": scores})
    fig = go.Figure(go.Parcoords(
        line={"color": scores, "colorscale": COLORSCALE, "reversescale": not maximize(score),
              "showscale": True},
        dimensions=dims,
    ))
    fig.update_layout(height=420, margin={"l": 60, "r": 60, "t": 50, "b": 20})
    return fig


def best_so_far_figure(
    trials: Sequence[dict], score: str = "best_val_acc", x: str = "trials"
) -> go.Figure:
    """Each trial's score as a dot and the running best as a step line, in trial order,
    against the trial count (``x="trials"``) or the cumulative epochs (``x="epochs"``)."""
    ordered = sorted(trials, key=lambda t: t["number"])
    if x == "epochs":
        xs = np.cumsum([t.get("epochs_done", 0) for t in ordered]).tolist()
        x_title = "epochs trained (cumulative)"
    else:
        xs = list(range(1, len(ordered) + 1))
        x_title = "trials"
    ys = [t.get(score) for t in ordered]
    running = np.array([np.nan if v is None else v for v in
                        best_so_far(ys, maximize=maximize(score))], float)
    xs = np.asarray(xs)
    fig = go.Figure([
        _scatter(len(ordered))(
            x=xs, y=np.array([np.nan if v is None else v for v in ys], float), mode="markers",
            name="trial", marker={"size": 5, "color": "#9aa5a0"},
            customdata=np.array([t["number"] for t in ordered]),
            hovertemplate="trial %{customdata}<br>%{y:.4g}<extra></extra>",
        ),
        go.Scatter(x=xs, y=running, mode="lines", name="best so far", line_shape="hv",
                   line={"color": "#2f6f4f", "width": 3}),
    ])
    fig.update_layout(xaxis_title=x_title, yaxis_title=SCORES.get(score, score), height=320,
                      template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": 1.1})
    return fig
