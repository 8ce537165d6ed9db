"""Parameter importance as a bar chart (pure: data in, Figure out)."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go


def importance_figure(shares: Mapping[str, float], *, n: int, method: str) -> go.Figure:
    """One horizontal bar per parameter, the most important on top, as a share of the score's
    explained variation."""
    ordered = sorted(shares.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(
        x=[v for _, v in ordered], y=[k for k, _ in ordered], orientation="h",
        text=[f"{v:.0%}" for _, v in ordered], textposition="auto",
        marker_color="#1f77b4", hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(
        title=f"What explains the score ({n} trials; {method})", height=120 + 36 * len(ordered),
        margin={"l": 10, "r": 10, "t": 50, "b": 30},
        xaxis={"title": "share of importance", "tickformat": ".0%", "range": [0, 1]})
    return fig


def order_by_importance(space: dict, shares: Mapping[str, float] | None) -> dict:
    """The space dict with its searched parameters ordered most important first (for the
    parallel-coordinates axes)."""
    if not shares:
        return space
    params = space.get("params", {})
    names = sorted(params, key=lambda n: -shares.get(n, 0.0))
    return {**space, "params": {n: params[n] for n in names}}
