"""Overview: every study and babysitting session with its state, and a one-click demo.

A first-time user lands here with an empty database: one button starts a real search (random
search on the handwritten digits on 2 workers) and opens its live page. While a runner works,
the lists are a fragment re-read every second; when the last one stops, one full rerun
redraws the page without the timer.
"""

import streamlit as st

from app.common import (
    LIST_ROW,
    PAGES,
    TEXT_AND_BUTTON,
    end_live,
    friendly_errors,
    get_conn,
    list_sessions_safe,
    live_every,
    live_fragment,
    open_study,
    plain,
    running_now,
    status_badge,
    trials_total,
)
from app.presets import DEMO_EPOCHS, DEMO_TRIALS, demo_study
from engine import study as studies

SHOWN = 12
FINISHED = ("complete", "pruned", "diverged", "failed", "cancelled")

conn = get_conn()
st.title("Panda & Caviar")
st.markdown("Tune neural networks two ways: **Caviar** runs many models at once and shows where "
            "the good hyperparameters are; **Panda** lets you babysit one model, epoch by epoch.")


def start_demo() -> None:
    with friendly_errors("start the demo search"):
        study_id = studies.new_study(conn, **demo_study())
        studies.start_study(conn, study_id)
        open_study(study_id)


hero = st.container(border=True)
left, right = hero.columns(TEXT_AND_BUTTON, vertical_alignment="center")
left.markdown("**See it work in a minute:** a random search over the learning rate, width, L2 "
              f"and Adam's β1 on handwritten digits, {DEMO_TRIALS} trials of {DEMO_EPOCHS} "
              "epochs on 2 workers. "
              "The points land on log axes and the curves grow as you watch.")
if right.button("▶ Run the demo study", type="primary", key="overview.demo", width="stretch"):
    start_demo()
links = hero.columns(3)
links[0].page_link(PAGES["designer"], label="Design a search", icon=":material/tune:")
links[1].page_link(PAGES["data"], label="Choose data", icon=":material/dataset:")
links[2].page_link(PAGES["babysit"], label="Babysit one model", icon=":material/child_care:")

def lists(was_live: bool) -> None:
    """Every study and session with its state; re-read every second while a runner works."""
    conn = get_conn()  # a fragment rerun may run on another thread: its own connection
    st.subheader("Studies")
    with friendly_errors("list the studies"):
        all_studies = studies.list_studies(conn)
        if not all_studies:
            st.caption("No study yet: run the demo above, or design one.")
        show_all = len(all_studies) > SHOWN and st.toggle(f"Show all {len(all_studies)} studies",
                                                          key="overview.all")
        for study in all_studies if show_all else all_studies[:SHOWN]:
            row = st.container(border=True)
            c = row.columns(LIST_ROW, vertical_alignment="center")
            done = sum(study["counts"][k] for k in FINISHED)
            c[0].markdown(f"**#{study['id']} {plain(study['name'])}**")
            c[0].caption(f"{study['sampler']['kind'].replace('_', '-')} search"
                         + (f", zoom of #{study['parent_id']}" if study["parent_id"] else ""))
            c[1].markdown(status_badge(study["status"]))
            total = trials_total(study)
            c[1].progress(min(1.0, done / max(1, total)), text=f"{done}/{total} trials")
            best = study["best_val_acc"]
            c[2].markdown("best val acc " + ("–" if best is None else f"**{best:.3f}**"))
            if c[3].button("Open", key=f"overview.open.{study['id']}"):
                open_study(study["id"])
            stalled = study["status"] == "queued" and not study["runner_alive"]
            if (study["status"] in ("interrupted", "stopped") or stalled) and c[4].button(
                    "Resume", key=f"overview.resume.{study['id']}", type="primary"):
                with friendly_errors(f"resume study #{study['id']}"):
                    studies.resume_study(conn, study["id"])
                    open_study(study["id"])

    st.subheader("Babysitting sessions")
    with friendly_errors("list the babysitting sessions"):
        sessions = list_sessions_safe(conn)
        if not sessions:
            st.caption("No session yet: babysit a trial from a study, or start one on the Babysit "
                       "page.")
        for session in sessions[:SHOWN]:
            status = session["status"]
            if status == "running" and not session.get("runner_alive", True):
                status = "interrupted"
            row = st.container(border=True)
            c = row.columns(LIST_ROW, vertical_alignment="center")
            c[0].markdown(f"**#{session['id']} {plain(session['name'])}**")
            c[1].markdown(status_badge(status))
            c[2].caption(f"epoch {session.get('head_epoch')}, branch {session.get('branch')}")
            if c[3].button("Open", key=f"overview.session.{session['id']}"):
                st.switch_page(PAGES["babysit"], query_params={"session": str(session["id"])})
            if status == "interrupted" and c[4].button(
                    "Resume", key=f"overview.session_resume.{session['id']}", type="primary"):
                with friendly_errors(f"resume session #{session['id']}"):
                    from engine import babysit

                    babysit.ensure_runner(conn, session["id"])
                    st.switch_page(PAGES["babysit"], query_params={"session": str(session["id"])})
    with friendly_errors("read what is running"):
        end_live(was_live, live_every(*running_now(conn)) is not None)


every = None
with friendly_errors("read what is running"):
    every = live_every(*running_now(conn))
live_fragment(lists, every)
