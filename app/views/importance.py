"""The "Importance" view: what explains the score (a bar chart), advice in plain words with
one-click actions, and the parallel coordinates with their axes ordered by importance."""

from __future__ import annotations

import sqlite3

import streamlit as st

from app.charts.importance import importance_figure, order_by_importance
from app.charts.search import parallel_coordinates, scored
from app.common import friendly_errors
from app.views.ranges import ranges_key
from engine import study as studies
from engine.search import Objective


def study_importance(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> tuple:
    """``(scores {number: score}, importance dict or None, advice list)`` under the study's
    objective and rank choice; the forest is refitted only when the data changed."""
    objective = Objective.from_dict(study["objective"])
    scores = studies.study_scores(conn, study)  # one aggregate query
    names = list(study["space"].get("params", {}))
    result = _importance(study["id"], study["epochs_done"], len(trials),
                         repr(study["rank"]), repr(study["space"]), trials, names, scores)
    lines = studies.importance_advice(study, trials, scores, result and result["shares"],
                                      maximize=objective.maximize)
    return scores, result, lines


@st.cache_data(show_spinner=False, max_entries=16)
def _importance(study_id, epochs_done, n_trials, rank, space, _trials, names, _scores):
    return studies.parameter_importance(_trials, names, _scores)


def importance_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    names = list(study["space"].get("params", {}))
    if not names:
        st.info("This study searched no parameter.")
        return
    scores, result, lines = study_importance(conn, study, trials)
    label = studies.rank_label(study["rank"], Objective.from_dict(study["objective"]).label)
    if result is None:
        st.info(f"Importance needs at least 8 trials with a score ({len(scores)} so far).")
    else:
        st.plotly_chart(importance_figure(result["shares"], n=result["n"],
                                          method="random-forest permutation"),
                        key="importance.chart")
        st.caption(f"Score: {label}. How much worse a random forest predicts the score when "
                   f"a parameter is shuffled (its fit explains {result['r2']:.0%} of the "
                   "variation); permutation importance rather than fANOVA: same idea, in "
                   "scikit-learn, for every kind of parameter.")
    for i, line in enumerate(lines):
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.markdown(f"💡 {line['text']}")
        if line["action"] and c2.button("Do it", key=f"importance.advice.{i}"):
            with friendly_errors("apply the advice"):
                kind, payload = line["action"]
                studies.act(conn, study["id"], kind, payload)
                st.rerun()
    if scored(trials, "best_val_acc"):
        st.markdown("**Parallel coordinates**, the most important parameter first")
        space = order_by_importance(study["space"], result and result["shares"])
        st.plotly_chart(parallel_coordinates(trials, space, ranges=st.session_state.get(
            ranges_key(study["id"]))), key="importance.parallel")
