"""The live study's "Belief" view: what a search that learns believes now.

The study's runner stores its sampler's ``describe()`` after each finished trial
(``study["belief"]``); this view draws it: for ``zoom`` the box of each round over the sampled
points, for ``gp`` and ``tpe`` a slice per parameter of the predicted score (mean and band) over
the observed trials, each on the parameter's own scale. It redraws with the live fragment.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from app.charts.belief import rounds_table, slices_figure, zoom_rounds_figure
from app.charts.search import scored
from engine.search import Objective, sampler_from_dict

LEARNING = ("zoom", "gp", "tpe")


def learns(study: dict) -> bool:
    """Whether the study's sampler learns (and so has a belief to show)."""
    return study["sampler"].get("kind") in LEARNING


def belief_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    kind = study["sampler"].get("kind")
    belief = study.get("belief")
    names = list(study["space"].get("params", {}))
    if kind not in LEARNING:
        st.info(f"A {kind} search does not learn from its results, so it has no belief to "
                "show: its points follow a fixed sequence.")
        return
    if not names:
        st.info("This study searched no parameter.")
        return
    if not belief:
        start = sampler_from_dict(study["sampler"]).n_startup
        st.info("The search has not learned anything yet: its first trials fill the space "
                f"evenly (Sobol), and its belief appears once enough of them have finished "
                f"(the first {start} trials are this start).")
        return
    objective = Objective.from_dict(study["objective"])
    if kind == "zoom":
        zoom_belief(study, trials, belief, names)
    else:
        model = str(belief.get("model", "model"))
        model = model[:1].upper() + model[1:]  # the start of a sentence ("gaussian process")
        st.caption(f"{model} of the score ({objective.label}), learnt "
                   f"from {len(belief.get('observed', []))} results at epoch "
                   f"{belief.get('epoch')}. Each panel varies one parameter with the others "
                   "held at the best trial (red circle); grey dots are the trials observed.")
        st.plotly_chart(slices_figure(belief, study["space"]), key="belief.slices")


def zoom_belief(study: dict, trials: list[dict], belief: dict, names: list[str]) -> None:
    rounds = belief.get("rounds", [])
    st.caption(f"Coarse to fine in one study: round 0 covers the whole space, then each round "
               f"samples a smaller box around the best results so far ({len(rounds)} round(s) "
               "so far; the last box solid).")
    if len(names) >= 2 and scored(trials, "best_val_acc"):
        c1, c2 = st.columns(2)
        x = c1.selectbox("x", names, index=0, key="belief.x")
        y = c2.selectbox("y", names, index=1, key="belief.y")
        st.plotly_chart(zoom_rounds_figure(trials, study["space"], x, y, belief),
                        key="belief.rounds")
    st.dataframe(rounds_table(belief, study["space"]), hide_index=True, key="belief.table")
