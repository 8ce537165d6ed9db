"""Loss and accuracy curves of every trial of a study, fast for thousands of lines.

Input: the columns of ``engine.storage.studies.study_metrics`` (``number``, ``epoch``,
``train_loss``, ``val_loss``, ``train_acc``, ``val_acc`` ...; rows ordered by trial number then
epoch). Drawing 1,000 trials as 1,000 Plotly traces is slow to send and to draw, so:

- all ordinary trials of one split are ONE WebGL trace, lines separated by gaps (NaN);
- the best trial (and a few top ones) get their own highlighted traces;
- past ``max_lines`` trials, the ordinary ones are aggregated into a median line and a
  10-90 % band per epoch, and only the top ones are drawn as lines;
- past ``max_points`` points per trace, each curve keeps every k-th epoch (and its last one).

A trial whose loss blew up (above ``BLOWUP`` = 1e3; a cross-entropy at chance is ln C, a few
units) would flatten every other curve on a linear axis. So the y axis has three modes
(``Y_SCALES``): ``"auto"`` (the default) is linear with its range fitted to the normal trials
(the blown-up ones clipped at the top edge, where a marker says their peak; a lone spike far
above every curve's start goes off the top, and the note says so), ``"linear"`` shows
everything, ``"log"`` puts the y axis on a log scale. In every mode blown-up trials are drawn
as their own flagged trace (legend and hover say so) and a note above the chart counts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.ticks import log_ticks, tick_text
from app.numbers import short

METRICS = {"loss": "loss", "acc": "accuracy"}
SPLITS = ("train", "val")
SPLIT_STYLE = {"train": {"dash": "dot"}, "val": {"dash": "solid"}}
TOP_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BEST_COLOR = "#d62728"
BLOWUP = 1e3  # a loss above this is a blow-up, not a curve to fit the axis to
BLOWUP_COLOR = "#b8860b"
Y_SCALES = ("auto", "linear", "log")
HEADROOM = 1.08  # the clipped axis ends a little above the highest normal point
SPIKE_PERCENTILE = 95  # the fitted axis keeps the curves' starts and 95 % of their points...
SPIKE_RATIO = 2.0  # ...unless a point goes this far above them: it is cut off at the top


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


def blown_up(metrics: Mapping[str, Sequence], splits: Sequence[str] = SPLITS,
             threshold: float = BLOWUP) -> dict[int, float]:
    """Trials whose loss in any of ``splits`` went above ``threshold``: {number: peak loss}."""
    numbers = _columns(metrics, "number")
    peaks: dict[int, float] = {}
    for split in splits:
        values = _columns(metrics, f"{split}_loss")
        if len(values) != len(numbers):
            continue
        over = np.isfinite(values) & (values > threshold)
        for number, value in zip(numbers[over], values[over]):
            peaks[int(number)] = max(peaks.get(int(number), 0.0), float(value))
    return dict(sorted(peaks.items()))


def blowup_note(peaks: Mapping[int, float], y_scale: str, threshold: float = BLOWUP) -> str:
    """The sentence above a chart with blown-up trials: "2 trials blew up (loss > 1e3),
    clipped: trial 3 (8e5), trial 7 (2.1e4)"; "" when none did."""
    if not peaks:
        return ""
    n = len(peaks)
    shown = ", ".join(f"trial {k} ({tick_text(v) if v < 1e5 else f'{v:.1e}'.replace('e+0', 'e')})"
                      for k, v in list(peaks.items())[:5])
    more = f" and {n - 5} more" if n > 5 else ""
    how = ", clipped" if y_scale == "auto" else ""
    return (f"{n} trial{'s' if n > 1 else ''} blew up (loss > {tick_text(threshold)}){how}: "
            f"{shown}{more}")


def curves_figure(
    metrics: Mapping[str, Sequence],
    metric: str = "loss",
    splits: Sequence[str] = ("train", "val"),
    *,
    best_number: int | None = None,
    top_numbers: Sequence[int] = (),
    log_y: bool = False,
    y_scale: str | None = None,
    max_lines: int = 300,
    max_points: int = 20_000,
) -> go.Figure:
    """Curves of ``metric`` (``"loss"`` or ``"acc"``) for the given ``splits`` against epochs.

    Traces, per split: ``"<split>: all trials"`` (one gapped WebGL trace) or, past
    ``max_lines`` trials, ``"<split>: median"`` and ``"<split>: 10-90 %"``; then one trace per
    top trial and ``"<split>: best (trial N)"``. Loss curves of blown-up trials (see
    :func:`blown_up`) leave the ordinary trace for ``"<split>: ⚠ blew up"`` (and, on the clipped
    axis, ``"⚠ clipped peaks"``: a marker at the top edge for each); the layout's ``meta``
    holds ``{"blown_up": [numbers], "y_scale": ..., "note": ...}`` and the note is the
    title. ``y_scale`` is one of ``Y_SCALES`` (default ``"auto"``; ``log_y=True`` is
    ``"log"``).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got metric={metric!r}")
    y_scale = y_scale or ("log" if log_y else "auto")
    if y_scale not in Y_SCALES:
        raise ValueError(f"y_scale must be one of {list(Y_SCALES)}, got y_scale={y_scale!r}")
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"splits must be among {SPLITS}, got {list(splits)}")
    numbers = _columns(metrics, "number")
    epochs = _columns(metrics, "epoch")
    n_trials = len(np.unique(numbers))
    special = [n for n in top_numbers if n != best_number]
    highlighted = np.isin(numbers, [*special, *([] if best_number is None else [best_number])])
    peaks = blown_up(metrics, splits) if metric == "loss" else {}
    wild = np.isin(numbers, list(peaks)) & ~highlighted  # (R,) rows of blown-up trials
    aggregate = n_trials > max_lines
    fig = go.Figure()
    both = len(splits) > 1
    for split in splits:
        legend = not both or split == "val"  # one legend entry per trial: its val line
        values = _columns(metrics, f"{split}_{metric}")
        base = ~highlighted & ~wild
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
        if wild.any():
            x, y, c = _gapped(numbers[wild], epochs[wild], values[wild], 1)
            fig.add_trace(go.Scattergl(
                x=x, y=y, customdata=c, mode="lines", name=f"{split}: ⚠ blew up",
                line={"color": BLOWUP_COLOR, "width": 1.5, **style}, legendgroup="blew up",
                showlegend=legend, connectgaps=False,
                hovertemplate="⚠ trial %{customdata} blew up<br>epoch %{x}<br>%{y:.4g}"
                              "<extra></extra>",
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
        # title side "top", not "top left": with "top left" Plotly wraps the entries as if the
        # title took no room, and at 1,024 px "val: trial 13" ran 100 px past the chart
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "title": {"side": "top"}},
    )
    fig.update_yaxes(type="log" if y_scale == "log" else "linear")
    drawn = np.concatenate([_columns(metrics, f"{s}_{metric}") for s in splits] or [[]])
    if y_scale == "log":
        fig.update_yaxes(**log_ticks(drawn.tolist(), max_ticks=7))
    spike = None
    if y_scale == "auto" and metric == "loss":
        spike = _fit_axis(fig, metrics, splits, peaks)
    note = blowup_note(peaks, y_scale)
    if spike is not None:
        top, high = spike
        note += ("; " if note else "") + (f"spikes up to {short(high)} go off the top at "
                                          f"{short(top)} ('all' shows them)")
    if note:
        fig.update_layout(title={"text": "⚠ " + note, "font": {"size": 13, "color": BLOWUP_COLOR},
                                 "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
                          margin={"t": 80})
    fig.update_layout(meta={"blown_up": list(peaks), "y_scale": y_scale, "note": note},
                      uirevision=f"{metric}-{y_scale}")  # keep zoom while curves grow
    return fig


def _fit_axis(fig: go.Figure, metrics: Mapping[str, Sequence], splits: Sequence[str],
              peaks: Mapping[int, float]) -> tuple[float, float] | None:
    """The clipped linear axis: fitted to the normal trials (blown-up ones marked at its top
    edge), and topped at the highest start of a curve or the 95th percentile of the points
    when one spike goes far above both (the demo's loss curves start near 2.4 and one point
    jumped to 35: every curve was a flat line at the bottom). (top, highest point) when a
    spike is cut, else None."""
    numbers = _columns(metrics, "number")
    keep = ~np.isin(numbers, list(peaks))
    first = np.r_[True, numbers[1:] != numbers[:-1]] if len(numbers) else np.zeros(0, bool)
    normal = np.concatenate([_columns(metrics, f"{s}_loss")[keep] for s in splits])
    starts = np.concatenate([_columns(metrics, f"{s}_loss")[keep & first] for s in splits])
    normal, starts = normal[np.isfinite(normal)], starts[np.isfinite(starts)]
    if not len(normal):
        return None
    low, high = min(0.0, float(normal.min())), float(normal.max())
    top = high * HEADROOM if high > 0 else 1.0
    cap = HEADROOM * max(float(starts.max()) if len(starts) else 0.0,
                         float(np.percentile(normal, SPIKE_PERCENTILE)))
    spiky = cap > 0 and high > SPIKE_RATIO * cap
    if spiky:
        top = cap
    if peaks or spiky:
        fig.update_yaxes(range=[low, top])
    if peaks:
        _mark_clipped(fig, metrics, splits, peaks, top)
    return (top, high) if spiky else None


def _mark_clipped(fig: go.Figure, metrics: Mapping[str, Sequence], splits: Sequence[str],
                  peaks: Mapping[int, float], top: float) -> None:
    """One marker at the top edge of the clipped axis per blown-up trial, at the first epoch
    its loss leaves the chart; the hover gives its peak."""
    numbers, epochs = _columns(metrics, "number"), _columns(metrics, "epoch")
    xs, texts = [], []
    for number, peak in peaks.items():
        above = np.zeros(len(numbers), bool)
        for split in splits:
            values = _columns(metrics, f"{split}_loss")
            above |= (numbers == number) & np.isfinite(values) & (values > top)
        if above.any():
            xs.append(float(epochs[above].min()))
            texts.append(f"⚠ trial {number} blew up: loss up to {peak:.3g} (off the chart)")
    if xs:
        fig.add_trace(go.Scatter(
            x=xs, y=[top] * len(xs), mode="markers", name="⚠ clipped peaks", text=texts,
            marker={"symbol": "triangle-up", "size": 11, "color": BLOWUP_COLOR},
            hovertemplate="%{text}<br>epoch %{x}<extra></extra>", cliponaxis=False,
        ))


def count_points(fig: go.Figure) -> int:
    """Number of finite (x, y) points drawn by the figure's line traces (for tests and the
    browser check that curves grow); marker-only traces (clipped peaks) are not curves."""
    total = 0
    for trace in fig.data:
        if trace.y is None or trace.x is None or getattr(trace, "mode", None) == "markers":
            continue
        y = np.asarray(trace.y, dtype=np.float64)
        total += int(np.isfinite(y).sum())
    return total
