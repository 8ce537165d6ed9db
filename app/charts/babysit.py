"""Charts of a babysitting session: curves of every branch, and the decision boundary.

Pure functions: data from ``engine.babysit.session_curves`` / ``session_events`` (or arrays) in,
a ``plotly.graph_objects.Figure`` out. Nothing here reads the database or calls Streamlit.

``curves_figure`` draws three rows sharing the epoch axis: loss (log axis), accuracy and the
learning rate (log axis). Every branch is drawn (the current one thick, abandoned ones faded),
each branch line starting at the epoch it forked from; markers show knob changes, rollbacks and
divergences. Validation-loss points carry their node id in ``customdata`` so a click on the
chart can choose a rollback target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from app.charts.ticks import log_ticks

PALETTE = qualitative.Plotly
ABANDONED_OPACITY = 0.3
MARKERS = {  # event kind -> (legend name, marker symbol, colour)
    "set": ("knob change", "diamond", "#444444"),
    "rollback": ("rollback", "x-thin-open", "#d62728"),
    "diverged": ("diverged", "star-triangle-up", "#ff7f0e"),
}
AUTO_LIMITS = (("tolerance", "tolerance"), ("max_rollbacks", "max acts"),
               ("min_learning_rate", "lr floor"))
METRICS = (  # (row, metric key, label, dash)
    (1, "train_loss", "train loss", "dot"),
    (1, "val_loss", "val loss", "solid"),
    (2, "train_acc", "train acc", "dot"),
    (2, "val_acc", "val acc", "solid"),
    (3, "learning_rate", "learning rate", "solid"),
)


MAX_BRANCHES = 12  # branches drawn (and listed in the legend) at most
EMPTY_TEXT = "No epoch trained yet: run one and its curves start here."


def shown_branches(curves: Sequence[dict], limit: int = MAX_BRANCHES) -> list[int]:
    """The branches worth drawing, at most ``limit``: the current one, then its ancestors
    (nearest first), then the most recent others. A session the old babysitter drove through
    1,000 rollbacks would otherwise list 1,000 branches in the legend."""
    by_branch = {c["branch"]: c for c in curves}
    chosen: list[int] = []
    current = next((c["branch"] for c in curves if c["current"]), None)
    while current is not None and current in by_branch and current not in chosen:
        chosen.append(current)
        current = by_branch[current].get("parent_branch")
    chosen = chosen[:limit]
    for b in sorted(by_branch, reverse=True):
        if len(chosen) >= limit:
            break
        if b not in chosen:
            chosen.append(b)
    return chosen


def branch_color(branch: int) -> str:
    return PALETTE[branch % len(PALETTE)]


def branch_points(curves: Sequence[dict]) -> dict[int, list[dict]]:
    """Branch -> its points in epoch order, preceded by the node it forked from (if any)."""
    by_node = {p["node_id"]: p for c in curves for p in c["points"]}
    out = {}
    for c in curves:
        points = list(c["points"])
        fork = by_node.get(c.get("fork_node_id"))
        if fork is None and c.get("parent_branch") is not None:
            parent = next((p for p in curves if p["branch"] == c["parent_branch"]), None)
            fork = next(
                (p for p in (parent or {}).get("points", []) if p["epoch"] == c["fork_epoch"]),
                None,
            )
        if fork is not None and (not points or points[0]["node_id"] != fork["node_id"]):
            points.insert(0, fork)
        out[c["branch"]] = points
    return out


def _values(points: list[dict], key: str) -> list[float | None]:
    return [None if p.get(key) is None else float(p[key]) for p in points]


def _marker_point(event: dict, lines: dict[int, list[dict]], by_node: dict[int, dict]):
    """The (epoch, val_loss, node) where an event's marker goes, or None."""
    payload = event.get("payload") or {}
    if event["kind"] == "rollback" and payload.get("to_node") in by_node:
        node = by_node[payload["to_node"]]
    else:
        node = next(
            (p for p in lines.get(event["branch"], []) if p["epoch"] == event["epoch"]), None
        )
    if node is None or node.get("val_loss") is None:
        return None
    return node["epoch"], float(node["val_loss"]), node


def _fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:g}"


def describe_event(event: dict) -> str:
    """One line for the event log, e.g. "you changed learning_rate: 0.01 → 1"."""
    payload = event.get("payload") or {}
    who = "the babysitter" if event.get("actor") == "auto" else "you"
    kind = event["kind"]
    if kind == "set":
        changes = payload.get("changes", {})
        parts = [f"{k}: {_fmt(old)} → {_fmt(new)}" for k, (old, new) in changes.items()]
        text = f"{who} changed " + (", ".join(parts) or "nothing")
    elif kind == "rollback":
        text = (f"{who} rolled back from epoch {payload.get('from_epoch')} to epoch "
                f"{payload.get('to_epoch')} (new branch {payload.get('new_branch')})")
    elif kind == "run":
        epochs = payload.get("epochs")
        what = f"{epochs} epoch(s)" if epochs else "a run until paused"
        text = f"{who} asked for {what}"
    elif kind == "auto":
        text = (f"{who} turned the automatic babysitter {'on' if payload.get('enabled') else 'off'}"
                f" (patience {payload.get('patience')}, factor {_fmt(payload.get('factor'))}"
                + "".join(f", {label} {_fmt(payload[key])}" for key, label in AUTO_LIMITS
                          if key in payload) + ")")
    elif kind == "gave_up":
        text = (f"the babysitter {payload.get('reason', 'gave up')} (after: "
                f"{payload.get('trigger', '')})")
        return text
    elif kind == "pace":
        rate = payload.get("epochs_per_second")
        text = (f"{who} set the pace to {_fmt(rate)} epoch(s) a second" if rate
                else f"{who} turned the pace off (full speed)")
    elif kind == "done":
        text = f"run ended: {payload.get('reason', '')}"
    elif kind in ("diverged", "failed", "rejected"):
        detail = payload.get("message", "")
        if kind == "rejected":
            detail = f"{payload.get('command')}: {refusal(payload)}"
        text = f"{kind}: {detail}".rstrip(": ")
    else:  # created, adopted, pause, and kinds added later
        text = f"{who}: {kind}" if kind == "pause" else kind
    if payload.get("reason") and kind != "done":
        text += f" ({payload['reason']})"
    return text


def refusal(payload: dict) -> str:
    """A rejected command's message without the command's name it repeats ("rollback:
    rollback: epoch 30 ..." in the log)."""
    message, command = str(payload.get("message", "")), f"{payload.get('command')}: "
    return message[len(command):] if message.startswith(command) else message


def last_refusal(events: Sequence[dict]) -> str:
    """'The last rollback was not applied: <why>' while the newest thing the person did is a
    command the runner refused ("" otherwise): the refusal was one line deep in the event log
    and the click looked as if it did nothing."""
    mine = [e for e in events if e.get("actor") != "auto"]
    if not mine or mine[-1]["kind"] != "rejected":
        return ""
    payload = mine[-1].get("payload") or {}
    return f"The last {payload.get('command')} was not applied: {refusal(payload)}"


def event_log_rows(events: Sequence[dict]) -> list[dict]:
    """Rows for the event-log table, newest first: epoch, branch, who, what."""
    return [
        {"epoch": e["epoch"], "branch": e["branch"],
         "who": "auto" if e.get("actor") == "auto" else "you", "what": describe_event(e)}
        for e in reversed(events)
    ]


def loss_jump(head_val_loss: float | None, best: dict | None, learning_rate: float) -> str:
    """A warning when the validation loss blew up without becoming NaN (Adam with batch norm
    at a learning rate of 10 goes from 0.07 to 2,000 and stays finite, so the session is not
    "diverged"): at least 10 times the best node's loss and 0.5 above it. "" otherwise."""
    if head_val_loss is None or not best or best.get("val_loss") is None:
        return ""
    low = best["val_loss"]
    if head_val_loss < 10 * low or head_val_loss - low < 0.5:
        return ""
    return (f"The validation loss jumped to {head_val_loss:.4g}, {head_val_loss / low:,.0f} "
            f"times its best ({low:.4g} at epoch {best['epoch']}): the learning rate "
            f"({learning_rate:g}) is probably too high. Roll back to epoch {best['epoch']} "
            "(starred ★ in the picker) and turn it down.")


def curves_figure(
    curves: Sequence[dict], events: Sequence[dict] = (), *, height: int = 640
) -> go.Figure:
    """Loss (log), accuracy and learning rate (log) per epoch for every branch, with markers.

    At most ``MAX_BRANCHES`` branches are drawn (``shown_branches``; a note says how many are
    not). Traces: per drawn branch, five lines (train/val loss, train/val accuracy, learning
    rate), in legend group ``branch {b}``; then one marker trace per event kind present (``set``,
    ``rollback``, ``diverged``) on the loss row.
    """
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.3, 0.25],
        subplot_titles=("loss", "accuracy", "learning rate"),
    )
    lines = branch_points(curves)
    drawn = set(shown_branches(curves))
    hidden = len(curves) - len(drawn)
    curves = [c for c in curves if c["branch"] in drawn]
    lines = {b: p for b, p in lines.items() if b in drawn}
    for c in sorted(curves, key=lambda c: (not c["abandoned"], c["current"], c["branch"])):
        b = c["branch"]
        points = lines[b]
        state = "current" if c["current"] else "abandoned" if c["abandoned"] else ""
        for row, key, label, dash in METRICS:
            fig.add_trace(
                go.Scatter(
                    x=[p["epoch"] for p in points], y=_values(points, key),
                    customdata=[p["node_id"] for p in points],
                    mode="lines+markers" if key == "val_loss" else "lines",
                    name=f"branch {b} {label}" + (f" ({state})" if state else ""),
                    legendgroup=f"branch {b}", showlegend=key in ("train_loss", "val_loss"),
                    line={"color": branch_color(b), "dash": dash,
                          "width": 3 if c["current"] else 1.5},
                    marker={"size": 5},
                    opacity=ABANDONED_OPACITY if c["abandoned"] else 1.0,
                    hovertemplate=(f"branch {b} · epoch %{{x}}<br>{label} %{{y:.4g}}"
                                   "<extra></extra>"),
                ),
                row=row, col=1,
            )
    by_node = {p["node_id"]: p for points in lines.values() for p in points}
    for kind, (name, symbol, color) in MARKERS.items():
        found = [(e, _marker_point(e, lines, by_node)) for e in events if e["kind"] == kind]
        found = [(e, m) for e, m in found if m is not None]
        if not found:
            continue
        fig.add_trace(
            go.Scatter(
                x=[m[0] for _, m in found], y=[m[1] for _, m in found],
                customdata=[m[2]["node_id"] for _, m in found],
                text=[describe_event(e) for e, _ in found], mode="markers", name=name,
                marker={"symbol": symbol, "size": 13, "color": color,
                        "line": {"width": 2, "color": color}},
                hovertemplate="%{text}<extra></extra>",
            ),
            row=1, col=1,
        )
    losses = [v for t in fig.data if t.yaxis in (None, "y") for v in (t.y or ())]
    fig.update_yaxes(type="log", **(log_ticks(losses, 5) or {"dtick": "D2", "tickformat": ".2g"}),
                     row=1, col=1)
    # accuracy is a share: always 0-100% (an empty session's autorange drew -100..400%)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], row=2, col=1)
    fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=3, col=1)
    if not any(p.get("val_loss") is not None for points in lines.values() for p in points):
        fig.update_xaxes(range=[0, 10])  # nothing trained: a first stretch of epochs, no data
        fig.update_yaxes(range=[-1, 1], row=1, col=1)  # loss 0.1 .. 10 (log)
        fig.update_yaxes(range=[-4, 0], row=3, col=1)  # learning rate 1e-4 .. 1 (log)
        fig.add_annotation(text=EMPTY_TEXT, xref="paper", yref="paper", x=0.5, y=0.8,
                           showarrow=False, font={"size": 14, "color": "#666666"})
    fig.update_layout(
        height=height, margin={"l": 50, "r": 10, "t": 30, "b": 40}, hovermode="closest",
        legend={"orientation": "h", "y": -0.12}, clickmode="event+select",
    )
    if hidden:
        fig.add_annotation(
            text=(f"showing {len(drawn)} of {len(drawn) + hidden:,} branches (at most "
                  f"{MAX_BRANCHES}): the current one, its ancestors and the latest"),
            xref="paper", yref="paper", x=1, y=1.05, showarrow=False, xanchor="right",
            font={"size": 11, "color": "#666666"},
        )
    return fig


def boundary_figure(
    xx: np.ndarray,
    yy: np.ndarray,
    proba: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    class_names: Sequence[str],
    feature_names: Sequence[str] = ("x1", "x2"),
    height: int = 420,
) -> go.Figure:
    """Decision boundary over a grid, with the training points, in original coordinates.

    xx, yy (R, R) the grid; proba (R*R, C) or (R, R, C) class probabilities at the grid points
    (row-major like xx); X (N, 2) points and y (N,) their classes. Two classes: a contour of
    P(class 1) from 0 to 1 with the 0.5 line bold. C > 2: a heatmap coloured by the most likely
    class, paler where the model is less sure. Then one scatter trace per class.
    """
    xx, yy = np.asarray(xx), np.asarray(yy)
    proba = np.asarray(proba).reshape(xx.shape[0], xx.shape[1], -1)
    n_classes = proba.shape[2]
    x_axis, y_axis = xx[0, :], yy[:, 0]
    fig = go.Figure()
    if n_classes == 2:
        fig.add_trace(
            go.Contour(
                x=x_axis, y=y_axis, z=proba[:, :, 1], zmin=0, zmax=1, colorscale="RdBu",
                opacity=0.75, contours={"start": 0, "end": 1, "size": 0.1},
                line={"width": 0.5}, colorbar={"title": f"P({class_names[1]})", "len": 0.8},
                name="P(class)", hovertemplate="P=%{z:.2f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Contour(
                x=x_axis, y=y_axis, z=proba[:, :, 1], showscale=False, contours_coloring="none",
                contours={"start": 0.5, "end": 0.5, "size": 1}, line={"width": 2.5,
                                                                         "color": "black"},
                name="boundary", hoverinfo="skip",
            )
        )
    else:
        winner = proba.argmax(axis=2)
        sure = (proba.max(axis=2) - 1 / n_classes) / (1 - 1 / n_classes)  # 0 tie .. 1 certain
        z = winner + np.clip(sure, 0.0, 0.999)
        scale = []
        for k in range(n_classes):
            scale += [(k / n_classes, _pale(branch_color(k))),
                      ((k + 1) / n_classes, branch_color(k))]
        fig.add_trace(
            go.Heatmap(
                x=x_axis, y=y_axis, z=z, zmin=0, zmax=n_classes, colorscale=scale,
                showscale=False, opacity=0.6, customdata=proba.max(axis=2),
                hovertemplate="most likely: class %{z:.0f} (P=%{customdata:.2f})<extra></extra>",
                name="most likely class",
            )
        )
    X, y = np.asarray(X), np.asarray(y)
    for k, name in enumerate(class_names):
        sel = y == k
        fig.add_trace(
            go.Scatter(
                x=X[sel, 0], y=X[sel, 1], mode="markers", name=str(name),
                marker={"size": 6, "color": _class_color(k, n_classes),
                        "line": {"width": 1, "color": "white"}},
            )
        )
    fig.update_layout(
        height=height, margin={"l": 40, "r": 10, "t": 10, "b": 40},
        xaxis={"title": feature_names[0], "range": [x_axis[0], x_axis[-1]]},
        yaxis={"title": feature_names[1], "range": [y_axis[0], y_axis[-1]]},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _class_color(k: int, n_classes: int) -> str:
    if n_classes == 2:  # match the RdBu contour: class 0 red, class 1 blue
        return ("#b2182b", "#2166ac")[k]
    return branch_color(k)


def _pale(hex_color: str, amount: float = 0.85) -> str:
    """Mix a '#rrggbb' colour with white."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)
