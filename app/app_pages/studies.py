"""Studies, live: progress, trials, curves and sampled points of one study, updated while its
runner trains; stop and resume.

The study id lives in ``st.query_params["study"]`` so a refresh shows the same study. While the
study is active a fragment re-reads SQLite every second, or slower when a redraw takes long
(``app.live``); when it finishes, one full rerun redraws the page without the timer.
"""

import time

import streamlit as st

from app.common import (
    ACTIVE_STATUSES,
    PAGES,
    friendly_errors,
    get_conn,
    plain,
    query_int,
    set_query,
    status_badge,
    trials_total,
)
from app.datasets import load_dataset, spec_label
from app.live import live_part, refresh_note
from app.numbers import elapsed
from app.study_views import views_for
from app.views.health import flag_summary
from app.views.selection import selection_bar
from engine import study as studies
from engine.search import Objective

FINISHED = ("complete", "pruned", "diverged", "failed", "cancelled")

conn = get_conn()
# Archived studies are hidden from the picker, unless the URL asks for one.
all_studies = [s for s in studies.list_studies(conn)
               if not s["archived"] or s["id"] == query_int("study")]
if not all_studies:
    st.title("Studies")
    st.info("No study yet. Start the demo from the overview, or design a search.")
    st.page_link(PAGES["overview"], label="Overview and demo", icon=":material/home:")
    st.page_link(PAGES["designer"], label="Search designer", icon=":material/tune:")
    st.stop()

by_id = {s["id"]: s for s in all_studies}
wanted = query_int("study")
if wanted is not None and wanted not in by_id:
    st.warning(f"There is no study #{wanted}; showing the newest one.")
study_id = wanted if wanted in by_id else all_studies[0]["id"]
pick_column, buttons = st.columns([4, 1], vertical_alignment="bottom")
picked = pick_column.selectbox(
    "Study", list(by_id), index=list(by_id).index(study_id),
    format_func=lambda i: f"#{i} · {by_id[i]['name']} · {status_badge(by_id[i]['status'])}")
if picked != wanted:
    set_query(study=picked)
study_id = picked
study = studies.get_study(conn, study_id)
# A queued study whose runner never started (or died before its first write) is not active:
# it gets a Start button instead of a timer that would poll forever.
stalled = study["status"] == "queued" and not study["runner_alive"]
active = study["status"] in ACTIVE_STATUSES and not stalled


def describe_study(s: dict) -> str:
    sampler = s["sampler"]["kind"].replace("_", "-")
    scheduler = s["scheduler"]
    if scheduler["kind"] == "full_budget":
        budget = f"{scheduler['n_epochs']} epochs"
    elif scheduler["kind"] == "pbt":
        budget = (f"population-based, {scheduler['n_rounds']} rounds of "
                  f"{scheduler['interval']} epochs")
    else:
        budget = (f"ASHA {scheduler['min_epochs']}→{scheduler['max_epochs']} epochs, "
                  f"η={scheduler['eta']}")
    where = s["executor_address"] or f"{s['workers']} local worker(s)"
    trials = f"{s['n_trials']} trials" if s["n_trials"] else "trials"
    if s["epoch_budget"]:
        trials += f" within {s['epoch_budget']:,} epochs"
    objective = Objective.from_dict(s["objective"]).label
    return (f"{sampler} search · {trials} · {budget} · {objective} · "
            f"{spec_label(s['dataset'])} · {where} · seed {s['seed']}")


st.markdown(f"### {plain(study['name'])} &nbsp; {status_badge(study['status'])}")
st.caption(describe_study(study))
with friendly_errors("say how the study's trials train"):
    data = load_dataset(conn, study["dataset"])
    stacked = studies.stacking_plan_for(
        study["space"], study["sampler"], study["scheduler"], n_trials=study["n_trials"],
        seed=study["seed"], workers=study["workers"], n_features=data.n_features,
        n_classes=data.n_classes, params=[t["params"] for t in studies.list_trials(conn, study_id)])
    st.caption(f":material/stacks: {stacked['text']}")
with buttons:
    if active and st.button("Stop", key="study.stop", width="stretch",
                                icon=":material/stop:"):
        with friendly_errors("stop the study"):
            studies.stop_study(conn, study_id)
            st.rerun()
    if (study["status"] in ("stopped", "interrupted", "failed") or stalled) and st.button(
            "▶ Start" if stalled else "▶ Resume", key="study.resume", type="primary",
            width="stretch"):
        with friendly_errors("resume the study"):
            studies.resume_study(conn, study_id)
            st.rerun()
if study["status"] == "interrupted":
    st.warning("The runner of this study stopped unexpectedly (a crash or a restart). "
               "Resume continues every unfinished trial from its last checkpoint.",
               icon=":material/warning:")
elif study["status"] == "failed" and study["message"]:
    st.error(f"The study failed: {plain(study['message'])}", icon=":material/error:")


def live() -> None:
    with friendly_errors("refresh the study"):
        conn = get_conn()  # a fragment rerun may run on another thread: its own connection
        now = studies.get_study(conn, study_id)
        trials = studies.list_trials(conn, study_id)
        counts = now["counts"]
        done = sum(counts[k] for k in FINISHED)
        total = trials_total(now)
        st.progress(min(1.0, done / max(1, total)),
                    text=f"{done} of {total} trials finished · {counts['running']} "
                    f"running · {counts['waiting']} waiting"
                    + (f" · {counts['paused']} at a round boundary" if counts["paused"] else "")
                    + (f" · {counts['stopped']} stopped" if counts["stopped"] else "")
                    + f" · {now['epochs_done']:,} epochs trained")
        refresh_note()
        end = now["finished_at"] or (time.time() if now["status"] in ACTIVE_STATUSES
                                     else now["updated_at"])
        # at 1,024 px four equal columns (118 px) cut "Best validation acc…" and "Pruned /
        # diverged / …" (147 px); "Best val accuracy" needs 115, "11,520" and "72 min" 110
        m = st.columns([2.3, 3, 2.3, 2.3])
        best = now["best_val_acc"]
        m[0].metric("Best val accuracy", "–" if best is None else f"{best:.3f}")
        m[1].metric("Pruned / diverged / failed",
                    f"{counts['pruned']} / {counts['diverged']} / {counts['failed']}")
        m[2].metric("Epochs trained", f"{now['epochs_done']:,}")
        m[3].metric("Elapsed", elapsed(end - now["created_at"]))
        failed = [t for t in trials if t["state"] == "failed"]
        if failed:
            last_line = (failed[0]["error"].strip().splitlines() or ["no message"])[-1]
            st.warning(f"{len(failed)} trial(s) failed. Trial {failed[0]['number']}: "
                       f"{plain(last_line[:300])} (details in Trials)", icon=":material/warning:")
        flag_summary(trials)
        trials = selection_bar(now, trials)  # linked selection (app/views/selection.py)
        views, view_key = views_for(now)
        view = st.segmented_control("View", list(views), default=next(iter(views)), required=True,
                                    key=view_key, bind="query-params")  # a refresh keeps it
        views[view](conn, now, trials)
        if active and (now["status"] not in ACTIVE_STATUSES or not now["runner_alive"]):
            st.rerun(scope="app")  # finished: redraw once, without the timer


live_part("studies.live", live, live=active)
