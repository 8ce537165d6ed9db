"""Population-based training: each trial's learning rate over epochs, and who copied whom.

Inputs are plain data: the columns of ``engine.storage.studies.study_metrics`` (``number``,
``epoch``, ``learning_rate``; rows by trial number then epoch) and the rows of
``engine.storage.studies.trial_lineage`` (``number``, ``donor_number``, ``epoch``, ``params``).

Each trial is a step line on a log axis: the learning rate of epoch ``e`` is drawn from ``e - 1``
to ``e`` (shape ``"vh"``), so an exploit at the end of epoch ``E`` shows as a jump at ``x = E``,
where its marker sits, labelled ``donor→recipient`` (close labels of one round folded into one,
``"1→0 +2"``; rounds alternately above and below: ``exploit_labels``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.ticks import log_ticks

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
          "#bcbd22", "#7f7f7f")
EXPLOIT_COLOR = "#d62728"
LEGEND_MAX = 20  # more trials than this: no legend, hover names them
LABEL_GAP = 0.08  # share of the y span (log) two labels at one epoch need between them


def _lr_after(numbers: np.ndarray, epochs: np.ndarray, lrs: np.ndarray, number: int,
              epoch: int) -> float | None:
    """The learning rate trial ``number`` trained epoch ``epoch + 1`` with, if recorded."""
    hit = np.flatnonzero((numbers == number) & (epochs == epoch + 1))
    return float(lrs[hit[0]]) if len(hit) else None


def exploit_labels(xs: Sequence[int], ys: Sequence[float], pairs: Sequence[str],
                   all_lrs: Sequence[float], gap: float = LABEL_GAP) -> tuple[list, list]:
    """Texts and positions for the exploit markers, so no two labels overlap.

    A round's exploits share one epoch and often land at close learning rates: their labels used
    to pile up on one spot. Per epoch, markers are taken from the lowest rate up; one whose label
    would sit within ``gap`` of the y axis's span (log scale) of the label below is folded into it
    (that label becomes ``"1→0 +2"``, its hover still names each copy); rounds alternate labels
    above and below their markers, so neighbouring epochs do not collide either. Every marker
    keeps its own hover text.
    """
    logs = np.log10([v for v in all_lrs if v and v > 0] or [1.0])
    span = max(float(logs.max() - logs.min()), 1.0)
    texts, positions = [""] * len(xs), ["top center"] * len(xs)
    for r, epoch in enumerate(sorted(set(xs))):
        members = sorted((i for i, x in enumerate(xs) if x == epoch),
                         key=lambda i: (ys[i], pairs[i]))
        shown: list[tuple[int, list[int]]] = []  # (labelled marker, markers folded into it)
        for i in members:
            if shown and (np.log10(ys[i]) - np.log10(ys[shown[-1][0]])) / span < gap:
                shown[-1][1].append(i)
            else:
                shown.append((i, []))
        for i, folded in shown:
            texts[i] = pairs[i] + (f" +{len(folded)}" if folded else "")
            positions[i] = "bottom center" if r % 2 else "top center"
    return texts, positions


def population_figure(metrics: Mapping[str, Sequence], lineage: Sequence[Mapping]) -> go.Figure:
    """One ``"trial N"`` step line per trial (learning rate against epoch, log y axis) and one
    ``"exploits"`` marker trace at ``(epoch, the recipient's new learning rate)`` with text
    ``"donor→recipient"``."""
    numbers = np.asarray(metrics.get("number", ()), dtype=np.int64)
    epochs = np.asarray(metrics.get("epoch", ()), dtype=np.int64)
    lrs = np.asarray(metrics.get("learning_rate", ()), dtype=np.float64)
    fig = go.Figure()
    trials = list(dict.fromkeys(numbers.tolist()))
    for i, number in enumerate(trials):
        mask = numbers == number
        fig.add_trace(go.Scatter(
            x=np.r_[0, epochs[mask]], y=np.r_[lrs[mask][:1], lrs[mask]], mode="lines",
            name=f"trial {number}", line={"shape": "vh", "width": 1.5,
                                          "color": COLORS[i % len(COLORS)]},
            hovertemplate=f"trial {number}<br>epoch %{{x}}<br>lr %{{y:.3g}}<extra></extra>",
        ))
    xs, ys, pairs, hovers = [], [], [], []
    for row in lineage:
        new = _lr_after(numbers, epochs, lrs, row["number"], row["epoch"])
        if new is None:
            new = row["params"].get("learning_rate")
        if new is None:
            continue
        xs.append(row["epoch"])
        ys.append(new)
        pairs.append(f"{row['donor_number']}→{row['number']}")
        hovers.append(f"epoch {row['epoch']}: trial {row['number']} copies trial "
                      f"{row['donor_number']}<br>and goes on with lr {new:.3g}")
    if xs:
        texts, positions = exploit_labels(xs, ys, pairs, [*lrs.tolist(), *ys])
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers+text", name="exploits (donor→recipient)", text=texts,
            textposition=positions, textfont={"size": 10, "color": EXPLOIT_COLOR},
            marker={"symbol": "triangle-up", "size": 11, "color": EXPLOIT_COLOR,
                    "line": {"width": 1, "color": "white"}},
            hovertext=hovers, hovertemplate="%{hovertext}<extra></extra>",
        ))
    fig.update_layout(
        xaxis_title="epoch", yaxis_title="learning rate", height=420, template="plotly_white",
        showlegend=len(trials) <= LEGEND_MAX, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        uirevision="population",
    )
    fig.update_yaxes(type="log", exponentformat="e", **log_ticks([*lrs.tolist(), *ys], 7))
    fig.update_xaxes(rangemode="tozero")
    return fig
