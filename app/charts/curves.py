"""Loss and accuracy curves of every trial of a study, fast for thousands of lines.

Input: the columns of ``engine.storage.studies.study_metrics`` (``number``, ``epoch``,
``train_loss``, ``val_loss``, ``train_acc``, ``val_acc`` ...; rows ordered by trial number then
epoch). Drawing 1,000 trials as 1,000 Plotly traces is slow to send and to draw, so:

- all ordinary trials of one split are ONE WebGL trace, lines separated by gaps (NaN);
- the best trial (and a few top ones) get their own highlighted traces;
- past ``max_lines`` trials, the ordinary ones are aggregated into a median line and a
  10-90 % band per epoch, and only the top ones are drawn as lines;
- past ``max_points`` points per trace, each curve keeps every k-th epoch (and its last one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.ticks import log_ticks

METRICS = {"loss": "loss", "acc": "accuracy"}
SPLITS = ("train", "val")
SPLIT_STYLE = {"train": {"dash": "dot"}, "val": {"dash": "solid"}}
TOP_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BEST_COLOR = "#d62728"


def _columns(metrics: Mapping[str, Sequence], key: str) -> np.ndarray:
    return np.asarray(metrics.get(key, ()), dtype=np.float64)


def _gapped(numbers: np.ndarray, epochs: np.ndarray, values: np.ndarray, stride: int):
    """x, y, trial number arrays with a NaN after each trial's curve; keeps every
    ``stride``-th epoch of each curve plus its last one. Input rows: by number, then epoch."""
    if len(numbers) == 0:
        return np.array([]), np.array([]), np.array([])
    last = np.r_[numbers[1:] != numbers[:-1], True]  # (R,) last row of each trial
    keep = last | (epochs % stride == 0) if stride > 1 else np.ones(len(numbers), bool)
    n, e, v, last = numbers[keep], epochs[keep], values[keep], last[keep]
    # insert a NaN row after each trial's last point
    out_len = len(n) + int(last.sum())
    pos = np.arange(len(n)) + np.r_[0, np.cumsum(last)[:-1]]
    x = np.full(out_len, np.nan)
    y = np.full(out_len, np.nan)
    c = np.full(out_len, np.nan)
    x[pos], y[pos], c[pos] = e, v, n
    return x, y, c


def _band(epochs: np.ndarray, values: np.ndarray):
    """Per epoch: the epochs, the 10th, 50th and 90th percentiles of ``values``."""
    order = np.argsort(epochs, kind="stable")
    e, v = epochs[order], values[order]
    uniq, start = np.unique(e, return_index=True)
    groups = np.split(v, start[1:])
    q = np.array([np.percentile(g, [10, 50, 90]) for g in groups])  # (E, 3)
    return uniq, q[:, 0], q[:, 1], q[:, 2]


def curves_figure(
    metrics: Mapping[str, Sequence],
    metric: str = "loss",
    splits: Sequence[str] = ("train", "val"),
    *,
    best_number: int | None = None,
    top_numbers: Sequence[int] = (),
    log_y: bool = False,
    max_lines: int = 300,
    max_points: int = 20_000,
) -> go.Figure:
    """Curves of ``metric`` (``"loss"`` or ``"acc"``) for the given ``splits`` against epochs.

    Traces, per split: ``"<split>: all trials"`` (one gapped WebGL trace) or, past
    ``max_lines`` trials, ``"<split>: median"`` and ``"<split>: 10-90 %"``; then one trace per
    top trial and ``"<split>: best (trial N)"``. ``log_y`` puts the y axis on a log scale.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got metric={metric!r}")
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"splits must be among {SPLITS}, got {list(splits)}")
    numbers = _columns(metrics, "number")
    epochs = _columns(metrics, "epoch")
    n_trials = len(np.unique(numbers))
    special = [n for n in top_numbers if n != best_number]
    highlighted = np.isin(numbers, [*special, *([] if best_number is None else [best_number])])
    aggregate = n_trials > max_lines
    fig = go.Figure()
    both = len(splits) > 1
    for split in splits:
        legend = not both or split == "val"  # one legend entry per trial: its val line
        values = _columns(metrics, f"{split}_{metric}")
        base = ~highlighted
        style = SPLIT_STYLE[split]
        if aggregate and base.any():
            e, q10, q50, q90 = _band(epochs[base], values[base])
            fig.add_trace(go.Scatter(x=np.r_[e, e[::-1]], y=np.r_[q90, q10[::-1]], fill="toself",
                                     name=f"{split}: 10-90 %", line={"width": 0},
                                     fillcolor="rgba(120,130,125,0.25)", hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=e, y=q50, name=f"{split}: median", mode="lines",
                                     line={"color": "#6b7570", **style}))
        elif base.any():
            rows = int(base.sum())
            stride = max(1, int(np.ceil(rows / max_points)))
            x, y, c = _gapped(numbers[base], epochs[base], values[base], stride)
            fig.add_trace(go.Scattergl(
                x=x, y=y, customdata=c, mode="lines", name=f"{split}: all trials",
                line={"color": "rgba(110,120,115,0.45)", "width": 1, **style},
                hovertemplate="trial %{customdata}<br>epoch %{x}<br>%{y:.4g}<extra></extra>",
                connectgaps=False,
            ))
        for i, number in enumerate(special):
            mask = numbers == number
            fig.add_trace(go.Scattergl(
                x=epochs[mask], y=values[mask], mode="lines", name=f"{split}: trial {number}",
                line={"color": TOP_COLORS[i % len(TOP_COLORS)], "width": 1.5, **style},
                legendgroup=f"trial {number}", showlegend=legend,
            ))
        if best_number is not None:
            mask = numbers == best_number
            fig.add_trace(go.Scattergl(
                x=epochs[mask], y=values[mask], mode="lines+markers",
                name=f"{split}: best (trial {best_number})", legendgroup="best",
                showlegend=legend,
                line={"color": BEST_COLOR, "width": 3, **style}, marker={"size": 4},
            ))
    fig.update_layout(
        legend_title_text="solid: validation, dotted: training" if both else "",
        xaxis_title="epoch", yaxis_title=METRICS[metric], height=400, template="plotly_white",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "title": {"side": "top left"}},
        uirevision=f"{metric}-{log_y}",  # keep zoom while the curves grow
    )
    fig.update_yaxes(type="log" if log_y else "linear")
    if log_y:
        drawn = np.concatenate([_columns(metrics, f"{s}_{metric}") for s in splits] or [[]])
        fig.update_yaxes(**log_ticks(drawn.tolist(), max_ticks=7))
    return fig


def count_points(fig: go.Figure) -> int:
    """Number of finite (x, y) points drawn by the figure's line traces (for tests and the
    browser check that curves grow)."""
    total = 0
    for trace in fig.data:
        if trace.y is None or trace.x is None:
            continue
        y = np.asarray(trace.y, dtype=np.float64)
        total += int(np.isfinite(y).sum())
    return total
