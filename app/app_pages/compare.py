"""Compare searches: two or more studies side by side, and a one-click grid-vs-random test.

The studies compared live in ``st.query_params["studies"]`` (``?studies=3,4``), so a refresh or
a shared link shows the same comparison.
"""

import streamlit as st

from app.charts.compare import (
    LEGEND_MAX,
    best_vs_budget,
    distinct_counts,
    distinct_values_figure,
    overlay_points,
)
from app.charts.search import SCORES, best_trial
from app.common import (
    ACTIVE_STATUSES,
    PAGES,
    TEXT_AND_BUTTON,
    friendly_errors,
    get_conn,
    query_ints,
    set_query,
    status_badge,
)
from app.datasets import spec_label
from app.live import live_part
from app.presets import grid_vs_random
from app.views.compare_learning import learning_box
from engine import study as studies

st.title("Compare searches")
conn = get_conn()


def launch_grid_vs_random() -> None:
    with friendly_errors("launch grid vs random"):
        conn = get_conn()  # a callback may run on another thread than the last script run
        grid, random = grid_vs_random()
        ids = [studies.new_study(conn, **grid), studies.new_study(conn, **random)]
        for study_id in ids:
            studies.start_study(conn, study_id)
        set_query(studies=ids)


box = st.container(border=True)
left, right = box.columns(TEXT_AND_BUTTON, vertical_alignment="center")
left.markdown("**Grid vs random at equal budget.** Two searches of 9 trials each over the "
              "learning rate (which matters) and dropout (which barely does): the 3x3 grid "
              "tries only 3 learning rates, random search tries 9. Watch which finds the "
              "better model.")
right.button("Run grid vs random", icon=":material/compare_arrows:", key="compare.gvr",
             on_click=launch_grid_vs_random, width="stretch")
learning_box(box)

all_studies = studies.list_studies(conn)
if len(all_studies) < 2:
    st.info("Comparing needs at least two studies: run grid vs random above, or launch "
            "searches from the designer.")
    st.page_link(PAGES["designer"], label="Search designer", icon=":material/tune:")
    st.stop()

by_id = {s["id"]: s for s in all_studies}
missing = [i for i in query_ints("studies") if i not in by_id]
if missing:
    st.warning(f"There is no study {', '.join(f'#{i}' for i in missing)} in this database.",
               icon=":material/warning:")
wanted = [i for i in query_ints("studies") if i in by_id] or [s["id"] for s in all_studies[:2]]
chosen = st.multiselect("Studies", list(by_id), default=wanted,
                        format_func=lambda i: f"#{i} {by_id[i]['name']} "
                        f"({status_badge(by_id[i]['status'])})")
if chosen != wanted:
    set_query(studies=chosen)
if len(chosen) < 2:
    st.warning("Pick at least two studies to compare.")
    st.stop()

running = any(by_id[i]["status"] in ACTIVE_STATUSES for i in chosen)


def comparison() -> None:
    with friendly_errors("compare the studies"):
        conn = get_conn()  # a fragment rerun may run on another thread: its own connection
        entries = []
        for study_id in chosen:
            study = studies.get_study(conn, study_id)
            study["trials"] = studies.list_trials(conn, study_id)
            entries.append(study)
        # at 1,024 px wide the two score segments need 320 px; half the main area (274 px)
        # clipped "best validation loss", three fifths give 329 (wall time needs 150)
        c1, c2 = st.columns([3, 2])
        score = c1.segmented_control("Score", list(SCORES), default="best_val_acc",
                                     required=True, format_func=SCORES.get, key="compare.score")
        budget = c2.segmented_control("Budget", ["epochs", "seconds"], default="epochs",
                                      required=True, key="compare.budget",
                                      format_func={"epochs": "epochs", "seconds": "wall time"}.get)
        summary = []
        for e in entries:
            best = best_trial(e["trials"], score)
            # the score the page compares comes beside the name: at 1,024 px wide the table
            # scrolls sideways after "trials", and a last column went unseen
            summary.append({
                "study": f"#{e['id']} {e['name']}",
                SCORES[score]: None if best is None else best[score],
                "status": status_badge(e["status"]), "sampler": e["sampler"]["kind"],
                "trials": len(e["trials"]), "epochs trained": e["epochs_done"],
                "data": spec_label(e["dataset"]),
            })
        st.dataframe(summary, hide_index=True, key="compare.summary")
        datasets = list(dict.fromkeys(spec_label(e["dataset"]) for e in entries))
        if len(datasets) > 1:
            st.warning("These studies learn different data (" + "; ".join(datasets) + "): "
                       "their scores do not measure the same thing.", icon=":material/warning:")
        st.plotly_chart(best_vs_budget(entries, score, budget), key="compare.budget_chart")
        names, _ = distinct_counts(entries)
        if len(entries) > LEGEND_MAX:
            st.caption("Below, each study keeps its colour from the chart above.")
        left, right = st.columns(2)
        with left:
            st.markdown("**Distinct values tried per parameter**")
            st.plotly_chart(distinct_values_figure(entries), key="compare.distinct")
        with right:
            st.markdown("**Where each study sampled**")
            if len(names) >= 2:
                a, b = st.columns(2)
                x = a.selectbox("x", names, index=0, key="compare.x")
                y = b.selectbox("y", names, index=1, key="compare.y")
                st.plotly_chart(overlay_points(entries, x, y), key="compare.points")
            else:
                st.caption("Needs two searched parameters.")
        if running and not any(e["status"] in ACTIVE_STATUSES for e in entries):
            st.rerun(scope="app")


live_part("compare", comparison, live=running, floor=2.0)
