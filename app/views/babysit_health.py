"""Network health on the babysit page: the current lineage's health curves and flags, live
beside the loss. ``app/app_pages/babysit.py`` calls ``session_health`` in its live fragment."""

from __future__ import annotations

import streamlit as st

from app.charts.health import dead_network_note, health_figure, lineage_points


def session_health(session_id: int, view: dict, curves: list[dict]) -> None:
    """The health curves of the lineage root -> head, with the flags ``session_view`` raised."""
    points = lineage_points(curves)
    if not any(p.get("health") for p in points):
        st.caption("Network health appears here after the first epoch trained.")
        return
    st.markdown("**Network health** of the current lineage")
    for flag in view.get("flags") or []:
        st.error(flag["text"], icon=":material/monitor_heart:")
    note = dead_network_note(points)
    if note:
        st.warning(note, icon=":material/heart_broken:")
    st.plotly_chart(health_figure(points, view.get("flags") or [], height=460),
                    key=f"health_{session_id}", width="stretch")
