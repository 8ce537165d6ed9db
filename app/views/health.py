"""Network health on the study page: the flag summary, the trials' health columns, one trial's
health curves, and the flag to colour the sampled points by.

Pure helpers (``flag_summary_text``, ``flag_options``) are tested without Streamlit; the draw
functions are what ``app/study_views.py`` and ``app/app_pages/studies.py`` call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import streamlit as st

from app.charts.health import dead_network_note, health_figure
from engine import study as studies
from engine.diagnosis import FLAG_KINDS, FLAG_LABELS, count_flags

SCORE_COLOUR = "score"
ANY_FLAG = "any"


def flag_summary_text(trials: Sequence[dict]) -> str:
    """"3 trials with exploding gradients · 1 trial with dead ReLUs", in FLAG_KINDS order;
    "" when no trial is flagged."""
    counts = count_flags([t.get("flags") or [] for t in trials])
    parts = []
    for kind in FLAG_KINDS:
        n = counts.get(kind, 0)
        if n:
            parts.append(f"{n} trial{'s' if n != 1 else ''} with {FLAG_LABELS[kind]}")
    return " · ".join(parts)


def flag_summary(trials: Sequence[dict]) -> None:
    """A warning line counting the flagged trials (nothing when none is)."""
    text = flag_summary_text(trials)
    if text:
        st.warning(f"Sick networks: {text}. The Trials view shows the evidence, and "
                   "Sampled points colours them.", icon=":material/monitor_heart:")


def flag_options(trials: Sequence[dict]) -> list[str]:
    """What the sampled points can be coloured by: the score, any flag, each kind present."""
    counts = count_flags([t.get("flags") or [] for t in trials])
    present = [k for k in FLAG_KINDS if counts.get(k)]
    return [SCORE_COLOUR, *([ANY_FLAG] if present else []), *present]


def colour_picker(trials: Sequence[dict], key: str) -> tuple[bool, str | None]:
    """A picker shown when some trial is flagged: (coloured by a flag?, its kind or None for
    any flag)."""
    options = flag_options(trials)
    if len(options) == 1:
        return False, None
    labels = {SCORE_COLOUR: "the score", ANY_FLAG: "any flag", **FLAG_LABELS}
    picked = st.segmented_control("Colour by", options, default=SCORE_COLOUR, required=True,
                                  format_func=labels.get, key=key)
    if picked in (None, SCORE_COLOUR):
        return False, None
    return True, None if picked == ANY_FLAG else picked


def trial_health(conn: sqlite3.Connection, trials: Sequence[dict]) -> None:
    """One trial's health curves and flags (the first flagged trial preselected)."""
    measured = [t for t in trials if t.get("health")]
    if not measured:
        st.caption("No trial has network health measured yet.")
        return
    first = next((t for t in measured if t.get("flags")), measured[0])
    pick = st.selectbox(
        "Network health of a trial", measured, index=measured.index(first),
        key="trials.health_pick",
        format_func=lambda t: f"trial {t['number']} · {t['state']}"
        + (f" · {len(t['flags'])} flag(s)" if t.get("flags") else " · no flag"))
    for flag in pick.get("flags") or []:
        st.error(flag["text"], icon=":material/monitor_heart:")
    epochs = studies.trial_metrics(conn, pick["id"])
    note = dead_network_note(epochs)
    if note:
        st.warning(note, icon=":material/heart_broken:")
    st.plotly_chart(health_figure(epochs, pick.get("flags") or []), key="trials.health_chart")
    st.caption("Measured at the end of an epoch on 128 validation rows: the gradient norm and "
               "the update-to-weight ratio (about 1e-3 is healthy) of each layer, the share of "
               "ReLUs never active on the batch, and how sure and how wrong the softmax is.")
