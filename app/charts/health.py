"""Network health drawn: a model's health curves over its epochs, and trials coloured by a flag.

Inputs are plain data: epochs as ``engine.storage.studies.trial_metrics`` (or a babysitting
lineage's points) return them, EpochMetrics dicts with an optional ``"health"`` dict
(``engine.nn.health.epoch_health`` keys: ``grad_norm_i``, ``update_ratio_i``, ``dead_i``,
``max_prob``, ``confident_wrong``, ...); flags as ``engine.diagnosis.diagnose`` returns them;
trial dicts as ``list_trials`` returns them (``flags``, ``health``, ``params``, scores).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.search import axis_layout, axis_of, plot_values, scored, searched_names
from engine.diagnosis import FLAG_LABELS, flag_kinds, format_number

PANELS = (  # (field, title: short enough for half of a narrow column, y scale)
    ("grad_norm", "gradient norm", "log"),
    ("update_ratio", "update / weight", "log"),
    ("dead", "dead ReLUs (share)", "linear"),
    ("softmax", "softmax", "linear"),
)
TITLE_SIZE = 13  # px, the panels' titles
MIN_WIDTH = 420  # px: the narrowest figure the titles and ticks are laid out for
LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FLAG_COLOR = "#d62728"
CLEAN_COLOR = "#2f6f4f"
SUMMARY_CELLS = {  # trials-table column -> health key
    "grad norm": "grad_norm",
    "update ratio": "update_ratio",
    "dead ReLUs": "dead",
    "max prob": "max_prob",
    "confident wrong": "confident_wrong",
}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def measured(epochs: Sequence[dict]) -> list[tuple[int, dict]]:
    """(epoch, health) of the epochs that carry health, in epoch order."""
    return sorted((int(e["epoch"]), e["health"]) for e in epochs if e.get("health"))


def layers_in(healths: Sequence[dict], field: str) -> list[int]:
    """The layer numbers that have ``field`` in any of the health dicts."""
    found = set()
    for h in healths:
        for key in h:
            head, _, tail = key.rpartition("_")
            if head == field and tail.isdigit():
                found.add(int(tail))
    return sorted(found)


def health_series(epochs: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one health key, where it was measured and finite."""
    xs, ys = [], []
    for epoch, h in measured(epochs):
        if _finite(h.get(key)):
            xs.append(epoch)
            ys.append(float(h[key]))
    return xs, ys


def log_ticks(values: Sequence[float], most: int = 5) -> list[float]:
    """At most ``most`` readable ticks for a log axis over the positive ``values``: powers of
    ten (every few when they are many) over two decades or more, else 1, 2 and 5 times them
    (Plotly's own labels on a short log axis are bare digits, '5' for 0.5 and '2' for 0.02)."""
    if not values:
        return []
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    if hi - lo >= 2:
        step = math.ceil((hi - lo + 1) / most)
        return [10.0 ** k for k in range(lo, hi + 1, step)]
    ticks = [m * 10.0 ** k for k in range(lo, hi + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if min(values) / 2.5 <= t <= max(values) * 2.5]
    return inside[:: math.ceil(len(inside) / most)] if inside else []


def dead_network_note(epochs: Sequence[dict]) -> str | None:
    """Why the gradient panels stay empty, when at the last measured epoch every ReLU of a
    hidden layer is dead and no gradient flows through it (its weight gradient is exactly 0;
    a leaky ReLU's still flows): the deepest such layer, what it does, what to try. None
    otherwise."""
    found = measured(epochs)
    if not found:
        return None
    epoch, health = found[-1]
    dead = [i for i in layers_in([health], "dead")
            if _finite(health.get(f"dead_{i}")) and health[f"dead_{i}"] >= 1.0
            and health.get(f"grad_norm_{i}") == 0]
    if not dead:
        return None
    layer = dead[-1]
    return (f"Every ReLU in layer {layer} is dead (epoch {epoch}): each one's input is "
            "negative for every row, so no gradient flows back through the layer and the "
            f"weights of layers 1 to {layer + 1} get a zero gradient: they stop learning, and "
            "the gradient and update panels have nothing to draw on their log scale. Lower the "
            "learning rate, or use He init, leaky ReLU or batch norm, then start again or roll "
            "back to an epoch before the units died.")


def _zero_layers(epochs: Sequence[dict], field: str,
                 layers: Sequence[int]) -> tuple[list[int], int | None]:
    """The layers whose latest measured ``field`` is 0 (nothing on a log axis), and the epoch
    from which all of them have been 0."""
    out, since = [], None
    for layer in layers:
        xs, ys = health_series(epochs, f"{field}_{layer}")
        if not ys or ys[-1] > 0:
            continue
        start = len(ys) - 1
        while start > 0 and ys[start - 1] <= 0:
            start -= 1
        out.append(layer)
        since = xs[start] if since is None else max(since, xs[start])
    return out, since


def health_figure(epochs: Sequence[dict], flags: Sequence[dict] = (), *,
                  height: int = 520) -> go.Figure:
    """Four panels over the epochs (x): the gradient norm and the update-to-weight ratio of
    each layer (log y), each hidden layer's share of dead ReLUs, and the softmax's mean max
    probability with its share of confident wrong predictions. Each flag is a dotted red line at
    its epoch, its text in the hover. Panel ``i`` (1..4) uses ``xaxis{i}`` / ``yaxis{i}``."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[p[1] for p in PANELS],
                        horizontal_spacing=0.12, vertical_spacing=0.2)
    fig.update_annotations(font_size=TITLE_SIZE)  # the titles (the only annotations so far)
    healths = [h for _, h in measured(epochs)]
    for index, (field, _, scale) in enumerate(PANELS):
        row, col = index // 2 + 1, index % 2 + 1
        if field == "softmax":
            for key, name, dash in (("max_prob", "mean max probability", "solid"),
                                    ("confident_wrong", "confident and wrong", "dot")):
                xs, ys = health_series(epochs, key)
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name,
                                         line={"color": "#444", "dash": dash},
                                         legendgroup="softmax"), row=row, col=col)
            fig.update_yaxes(range=[0, 1.02], row=row, col=col)
        else:
            for layer in layers_in(healths, field):
                xs, ys = health_series(epochs, f"{field}_{layer}")
                if scale == "log":
                    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
                    xs, ys = [x for x, _ in keep], [y for _, y in keep]
                fig.add_trace(go.Scatter(
                    x=xs, y=ys, mode="lines+markers", name=f"layer {layer}",
                    legendgroup=f"layer {layer}", showlegend=index == 0,
                    line={"color": LAYER_COLORS[(layer - 1) % len(LAYER_COLORS)]},
                    hovertemplate=f"layer {layer}, epoch %{{x}}: %{{y:.3g}}<extra></extra>"),
                    row=row, col=col)
            if scale == "log":
                ys = [y for layer in layers_in(healths, field)
                      for y in health_series(epochs, f"{field}_{layer}")[1] if y > 0]
                vals = log_ticks(ys)
                fig.update_yaxes(type="log", tickvals=vals or None,
                                 ticktext=[format_number(v) for v in vals] or None,
                                 row=row, col=col)
                zero, since = _zero_layers(epochs, field, layers_in(healths, field))
                if zero:
                    names = ", ".join(map(str, zero))
                    fig.add_annotation(  # short lines: it must fit half a narrow column
                        text=f"layer{'s' if len(zero) > 1 else ''} {names}: 0<br>since epoch "
                        f"{since}<br>(no gradient flows)",
                        x=0.5, y=0.04, yanchor="bottom",
                        xref=f"x{index + 1 if index else ''} domain",
                        yref=f"y{index + 1 if index else ''} domain", showarrow=False,
                        font={"color": FLAG_COLOR, "size": 11}, name="zero")
            else:
                fig.update_yaxes(range=[0, 1.02], row=row, col=col)
        fig.update_xaxes(title_text="epoch" if row == 2 else None, row=row, col=col)
    for flag in flags:
        fig.add_vline(x=flag["epoch"], line={"color": FLAG_COLOR, "dash": "dot", "width": 1})
        fig.add_trace(go.Scatter(
            x=[flag["epoch"]], y=[1.0], mode="markers", showlegend=False,
            marker={"symbol": "triangle-down", "size": 11, "color": FLAG_COLOR},
            name=FLAG_LABELS.get(flag["kind"], flag["kind"]), hovertext=[flag["text"]],
            hoverinfo="text"), row=2, col=1)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      template="plotly_white", legend={"orientation": "h", "y": -0.12})
    return fig


def health_cells(trial: dict) -> dict:
    """The trials-table cells of a trial's health: its flags' short names, and the summary
    numbers of its last measured epoch (None when not measured)."""
    health = trial.get("health") or {}
    kinds = flag_kinds(trial.get("flags") or [])
    return {"flags": ", ".join(FLAG_LABELS.get(k, k) for k in kinds),
            **{column: health.get(key) for column, key in SUMMARY_CELLS.items()}}


def flag_groups(trials: Sequence[dict], kind: str | None) -> tuple[list[dict], list[dict]]:
    """(flagged, clean) trials: with ``kind`` among their flags (any flag when None)."""
    def hit(t: dict) -> bool:
        kinds = flag_kinds(t.get("flags") or [])
        return bool(kinds) if kind is None else kind in kinds

    flagged = [t for t in trials if hit(t)]
    return flagged, [t for t in trials if not hit(t)]


def flag_text(trial: dict) -> str:
    return "<br>".join(f["text"] for f in trial.get("flags") or []) or "no flag"


def params_by_flag(trials: Sequence[dict], space: dict, score: str = "best_val_acc",
                   kind: str | None = None, columns: int = 3) -> go.Figure:
    """As ``params_vs_score`` (one panel per searched parameter, its value against the score),
    the points coloured by a flag: red trials raise ``kind`` (any flag when None), green ones do
    not. Two traces per panel, named after the groups; the flags' evidence in the hover."""
    names = searched_names(space)
    have = scored(trials, score)
    flagged, clean = flag_groups(have, kind)
    label = "any flag" if kind is None else FLAG_LABELS.get(kind, kind)
    rows = max(1, math.ceil(len(names) / columns))
    cols = min(columns, max(1, len(names)))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.04,
                        vertical_spacing=0.18)
    for i, name in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        axis = axis_of(space["params"][name])
        every = plot_values(axis, [t["params"].get(name) for t in have])
        for group, title, color, symbol in ((clean, f"without {label}", CLEAN_COLOR, "circle"),
                                            (flagged, label, FLAG_COLOR, "x")):
            fig.add_trace(go.Scatter(
                x=plot_values(axis, [t["params"].get(name) for t in group]),
                y=[t[score] for t in group], mode="markers", name=f"{title} ({len(group)})",
                legendgroup=title, showlegend=i == 0,
                marker={"size": 9, "color": color, "symbol": symbol, "opacity": 0.85},
                customdata=[[t["number"], t["state"]] for t in group],
                hovertext=[flag_text(t) for t in group],
                hovertemplate="trial %{customdata[0]} (%{customdata[1]})<br>%{hovertext}"
                f"<br>{name}=%{{x}}<br>{score}=%{{y:.4g}}<extra></extra>"),
                row=row, col=col)
        fig.update_xaxes(**axis_layout(axis, name, every, max_ticks=5), row=row, col=col)
    fig.update_yaxes(title_text=score.replace("_", " "), col=1)
    fig.update_layout(height=260 * rows + 60, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      template="plotly_white", legend={"orientation": "h", "y": 1.12})
    return fig


def lineage_points(curves: Sequence[dict]) -> list[dict]:
    """The points of the current branch's lineage, root to head, from
    ``babysit.session_curves`` (each branch's own points; a branch starts after its fork)."""
    by_branch = {c["branch"]: c for c in curves}
    current = next((c for c in curves if c.get("current")), None)
    chain, upto = [], None
    while current is not None:
        points = [p for p in current["points"] if upto is None or p["epoch"] <= upto]
        chain = points + chain
        upto = current.get("fork_epoch")
        parent = current.get("parent_branch")
        current = by_branch.get(parent) if parent is not None else None
    return chain
