"""The views of the live study page, one function each; the page picks one and calls it.

Each view takes the connection, the study dict (``get_study``) and its trials (``list_trials``)
and draws with Streamlit; the heavy reads (per-epoch metrics, exports) happen only in the view
that needs them, so a study of 1,000 trials x 50 epochs renders well under a second.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from app.charts.curves import Y_SCALES, curves_figure
from app.charts.health import SUMMARY_CELLS, health_cells, params_by_flag
from app.charts.population import population_figure
from app.charts.search import (
    SCORES,
    best_so_far_figure,
    best_trial,
    pair_scatter,
    parallel_coordinates,
    params_vs_score,
    scored,
)
from app.common import PAGES, db_path, friendly_errors, get_conn, open_study, plain
from app.study_cache import study_metrics as cached_metrics
from app.views import health as health_views
from app.views.actions import TRY_KEY, hands_view
from app.views.belief import belief_view, learns
from app.views.importance import importance_view
from app.views.ranges import range_form, ranges_key
from app.views.selection import narrow_metrics, remember
from app.zoom_box import box_rows
from engine import study as studies

TOP_LINES = 5
Y_SCALE_LABELS = {"auto": "fit", "linear": "all", "log": "log"}


def _top_numbers(trials: list[dict], k: int = TOP_LINES) -> list[int]:
    ranked = sorted(scored(trials, "best_val_acc"), key=lambda t: -t["best_val_acc"])
    return [t["number"] for t in ranked[:k]]


def curves_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """Loss / accuracy of every trial against epochs; the best trial in red."""
    c1, c2, c3 = st.columns([1, 1, 1])
    metric = c1.segmented_control("Metric", ["loss", "acc"], default="loss", required=True,
                                  format_func={"loss": "Loss", "acc": "Accuracy"}.get,
                                  key="curves.metric")
    splits = c2.pills("Curves", ["train", "val"], default=["train", "val"],
                      selection_mode="multi", key="curves.splits",
                      format_func={"train": "training", "val": "validation"}.get)
    y_scale = c3.segmented_control(
        "Y axis", list(Y_SCALES), default="auto", required=True, key="curves.y_scale",
        format_func=Y_SCALE_LABELS.get,
        help="fit to the normal curves: a trial whose loss blew up (> 1e3) is clipped at the "
             "top edge and flagged; all: a linear axis with every point; log: a log axis")
    metrics = narrow_metrics(study, trials, cached_metrics(conn, study))
    if not metrics["epoch"]:
        st.info("No epoch has finished yet: the curves appear as soon as one does.")
        return
    best = best_trial(trials)
    fig = curves_figure(metrics, metric, splits or ["val"], y_scale=y_scale,
                        best_number=None if best is None else best["number"],
                        top_numbers=_top_numbers(trials))
    st.plotly_chart(fig, key="curves.chart")
    names = list(study["space"].get("params", {}))
    if names and best is not None:
        st.markdown("**Where the search looked**: each parameter on its own scale against the "
                    "best validation accuracy (the best trial circled)")
        st.plotly_chart(params_vs_score(trials, study["space"], columns=min(4, len(names))),
                        key="curves.points")


def trials_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """The trial table, and handing a trial over to the babysit page."""
    names = list(study["space"].get("params", {}))
    rows = [
        {"trial": t["number"], "state": t["state"],
         **{n: t["params"].get(n) for n in names},
         "best val acc": t["best_val_acc"], "best val loss": t["best_val_loss"],
         "epochs": t["epochs_done"], "of": t["target_epochs"], "time (s)": round(t["seconds"], 2),
         **health_cells(t), "message": t["error"][:200]}
        for t in trials
    ]
    floats = [n for n, d in study["space"].get("params", {}).items() if d.get("type") == "float"]
    st.dataframe(rows, hide_index=True, key="trials.table", column_config={
        "best val acc": st.column_config.NumberColumn(format="%.4f"),
        "best val loss": st.column_config.NumberColumn(format="%.4f"),
        # three significant digits: with four decimals 1.2e-4 and 1.4e-4 both read 0.0001
        **{n: st.column_config.NumberColumn(format="%.3g") for n in floats},
        **{c: st.column_config.NumberColumn(format="%.3g") for c in SUMMARY_CELLS},
    })
    health_views.trial_health(conn, trials)
    with_checkpoint = [t for t in trials if t["epochs_done"] > 0]
    if not with_checkpoint:
        return
    best = best_trial(with_checkpoint) or with_checkpoint[0]
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    pick = left.selectbox(
        "Babysit a trial: continue it by hand, epoch by epoch", with_checkpoint,
        index=with_checkpoint.index(best), key="trials.babysit_pick",
        format_func=lambda t: f"trial {t['number']} · {t['state']} · epoch {t['epochs_done']}"
        f" · best val acc {t['best_val_acc'] or 0:.3f}")
    # the widget may hand back the dict of an earlier run: use this run's row of that trial
    pick = next((t for t in with_checkpoint if t["id"] == pick["id"]), pick)
    kept, why = fork_epochs(str(db_path()), pick["id"], pick["epochs_done"],
                            pick.get("checkpoint_id"))
    epoch = None
    if len(kept) > 1:
        epoch = st.number_input(
            "... from epoch", kept[0], kept[-1], kept[-1], key=f"trials.fork_epoch.{pick['id']}",
            help=f"Epoch {kept[-1]} continues from its checkpoint; an earlier epoch is replayed "
            "from the trial's start (same seed, knobs and data: the same weights) by the "
            "session's runner before you take over.")
    if right.button("Babysit this trial", key="trials.babysit", icon=":material/child_care:"):
        with friendly_errors("hand the trial to the babysit page"):
            if kept:
                session_id = studies.fork_trial(conn, pick["id"], epoch=epoch or kept[-1])
            else:  # no checkpoint kept: a fresh model with the trial's knobs and seed
                from engine import babysit

                session_id = babysit.adopt_trial(conn, pick["id"])
            st.switch_page(PAGES["babysit"], query_params={"session": str(session_id)})
    if len(kept) > 1:
        st.caption(f"Babysit from here forks trial {pick['number']} at any epoch 1..{kept[-1]}: "
                   f"epoch {kept[-1]} from its checkpoint, an earlier one replayed from its "
                   "start (a study keeps one checkpoint per trial).")
    elif kept:
        st.caption(f"Babysit from here forks trial {pick['number']} at epoch {kept[-1]}, its "
                   f"latest, only: {why}.")
    else:
        st.caption(f"Trial {pick['number']} has no checkpoint kept: babysitting starts it "
                   "afresh (epoch 0) with its knobs and seed.")


@st.cache_data(max_entries=256, show_spinner=False)
def fork_epochs(path: str, trial_id: int, epochs_done: int,
                checkpoint_id: int | None) -> tuple[list[int], str]:
    """The epochs a trial can be forked at, and why only its latest ("" otherwise), probed
    once per trial, epoch count and checkpoint (the probe trains its epoch 1: 0.1 s for the
    demo's nets; the Trials view redraws every second while a study runs)."""
    conn = get_conn()
    trial = studies.get_trial(conn, trial_id)
    why = studies.replay_refusal(conn, trial, probe=True)  # trains its epoch 1 once
    return studies.forkable_epochs(conn, trial, refusal=why), why


def _pair_picker(names: list[str], key: str) -> tuple[str, str]:
    c1, c2 = st.columns(2)
    x = c1.selectbox("x", names, index=0, key=f"{key}.x")
    y = c2.selectbox("y", names, index=1 if len(names) > 1 else 0, key=f"{key}.y")
    return x, y


def points_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """Each parameter against the score, and two parameters against each other; a zoom study
    is drawn with its parent and the box it sampled in."""
    space = study["space"]
    names = list(space.get("params", {}))
    if not names:
        st.info("This study searched no parameter.")
        return
    score = st.segmented_control("Score", list(SCORES), default="best_val_acc", required=True,
                                 format_func=SCORES.get, key="points.score")
    if not scored(trials, score):
        st.info("No trial has a score yet.")
        return
    by_flag, kind = health_views.colour_picker(trials, key="points.colour")
    st.plotly_chart(params_by_flag(trials, space, score, kind) if by_flag
                    else params_vs_score(trials, space, score), key="points.each",
                    on_select=remember(study["id"], "points.each", trials),
                    selection_mode=("points", "box", "lasso"))
    if len(names) < 2:
        return
    st.markdown("**Two parameters at a time**, coloured by score")
    x, y = _pair_picker(names, "points.pair")
    if study["parent_id"] is not None:
        with friendly_errors("load the parent study"):
            parent = studies.get_study(conn, study["parent_id"])
            st.caption(f"Zoom study of #{parent['id']} {plain(parent['name'])}: parent trials as "
                       "circles, this study's as diamonds, the zoom box dashed.")
            fig = pair_scatter(studies.list_trials(conn, parent["id"]), parent["space"], x, y,
                               score, box=study["box"], child_trials=trials)
            st.plotly_chart(fig, key="points.pair_chart")
            return
    children = [s for s in studies.list_studies(conn) if s["parent_id"] == study["id"]]
    child = None
    if children:
        child = st.selectbox("Show a zoom study on top", [None, *children], key="points.child",
                             format_func=lambda s: "none" if s is None else f"#{s['id']} "
                             f"{s['name']}")
    child_trials = studies.list_trials(conn, child["id"]) if child else ()
    fig = pair_scatter(trials, space, x, y, score, box=child["box"] if child else None,
                       child_trials=child_trials, try_here=True)
    st.caption("Click a point, or any empty spot, to try a trial there: the add form of "
               "\"Hands on\" starts from its values.")
    st.plotly_chart(fig, key="points.pair_chart", selection_mode=("points", "box", "lasso"),
                    on_select=remember(study["id"], "points.pair_chart", trials, (x, y)))
    tried = st.session_state.get(TRY_KEY)
    if tried:
        st.info("Try here: " + ", ".join(f"{n}={_short(tried.get(n))}" for n in names)
                + '. Open "Hands on" to add this trial (change any value there first).',
                icon=":material/ads_click:")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def parallel_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    if not scored(trials, "best_val_acc"):
        st.info("No trial has a score yet.")
        return
    st.caption("Log parameters are drawn as log10 with their values on the ticks. Dragging "
               "along an axis highlights lines in this chart only; the ranges below filter "
               "every view and are drawn on the axes.")
    ranges = st.session_state.get(ranges_key(study["id"]))
    st.plotly_chart(parallel_coordinates(trials, study["space"], ranges=ranges),
                    key="parallel.chart")
    range_form(study)


def best_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    left, right = st.columns(2)
    left.plotly_chart(best_so_far_figure(trials, x="trials"), key="best.trials")
    right.plotly_chart(best_so_far_figure(trials, x="epochs"), key="best.epochs")


def population_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """Population-based training: each trial's learning rate over epochs, and the exploits."""
    metrics = cached_metrics(conn, study)
    if not metrics["epoch"]:
        st.info("No epoch has finished yet: the population appears as soon as one does.")
        return
    rows = studies.trial_lineage(conn, study["id"])
    st.caption(f"Rounds of {study['scheduler']['interval']} epochs; {len(rows)} exploit(s) so "
               "far. Each line is a trial's learning rate; a red triangle marks where a trial "
               "took over a better trial's weights (donor→recipient) and perturbed its knobs.")
    st.plotly_chart(population_figure(metrics, rows), key="population.chart")
    names = list(study["space"].get("params", {}))
    if rows:
        st.dataframe([{"epoch": r["epoch"], "trial": r["number"], "copied trial":
                       r["donor_number"], **{n: r["params"].get(n) for n in names}}
                      for r in rows], hide_index=True, key="population.table")


def views_for(study: dict) -> tuple[dict, str]:
    """The views a study offers and the key of the view picker: a population-based study
    also has "Population", one whose sampler learns "Belief" (each set its own key, so a
    remembered choice never names a missing view)."""
    items, key = list(VIEWS.items()), "study.view"
    if learns(study):  # a sampler that learns: what it believes, after the sampled points
        items.insert(3, ("Belief", belief_view))
        key += ".learns"
    if study["scheduler"]["kind"] == "pbt":
        items.insert(1, ("Population", population_view))
        key += ".pbt"
    return dict(items), key


def selected_numbers(event) -> list[int]:
    """Trial numbers of the points selected (box or lasso) on a pair chart."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    numbers = []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, list | tuple) and custom and isinstance(custom[0], int | float):
            numbers.append(int(custom[0]))
    return sorted(set(numbers))


def _remember_selection() -> None:
    """on_select callback: runs before the rerun, so the view sees the new selection."""
    st.session_state["zoom.picked"] = selected_numbers(st.session_state.get("zoom.chart"))


def zoom_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """Coarse-to-fine: a child study sampling inside a box around the best trials, or around
    the trials selected on the chart."""
    have = scored(trials, "best_val_acc")
    names = list(study["space"].get("params", {}))
    if not have or not names:
        st.info("Zooming in needs at least one scored trial.")
        return
    mode = st.segmented_control(
        "Zoom around", ["top", "selection"], default="top", required=True, key="zoom.mode",
        format_func={"top": "the best trials", "selection": "trials I select on the chart"}.get)
    c1, c2, c3 = st.columns(3)
    shrink = c2.slider("Smallest box side (share of the range)", 0.05, 1.0, 0.5, key="zoom.shrink")
    n_trials = c3.number_input("Trials in the zoom study", 1, 10_000, study["n_trials"],
                               key="zoom.n_trials")
    picked = st.session_state.get("zoom.picked", [])
    plan = None
    with friendly_errors("place the zoom box"):
        if mode == "top":
            top_pct = c1.slider("The best %", 1, 100, 20, key="zoom.top")
            plan = studies.zoom_plan(conn, study["id"], top_fraction=top_pct / 100,
                                     shrink=shrink)
        else:
            c1.caption("Drag a box or a lasso over the chart's points to pick the trials.")
            if picked:
                plan = studies.zoom_plan(conn, study["id"], trial_numbers=picked, shrink=shrink)
    box = plan["box"] if plan else None
    x, y = _pair_picker(names, "zoom.pair") if len(names) >= 2 else (names[0], names[0])
    st.plotly_chart(pair_scatter(trials, study["space"], x, y, box=box), key="zoom.chart",
                    on_select=_remember_selection, selection_mode=("box", "lasso"))
    if plan is None:
        st.info("No trial selected yet.")
        return
    st.caption(f"The box around {len(plan['chosen'])} of {plan['n_scored']} scored trials "
               f"covers {100 * plan['volume']:.1f}% of the parent's space:")
    st.dataframe(box_rows(box["values"], study["space"]), hide_index=True, key="zoom.box")
    if st.button("Launch the zoom study", type="primary", key="zoom.launch",
                 icon=":material/zoom_in:"):
        with friendly_errors("launch the zoom study"):
            child = studies.coarse_to_fine_child(
                conn, study["id"], trial_numbers=plan["chosen"], shrink=shrink,
                n_trials=int(n_trials),
                name=f"{study['name']} (zoom on {len(plan['chosen'])} trials)")
            studies.start_study(conn, child)
            open_study(child)


def export_csv(study_id: int, what: str):
    """A zero-argument callable producing the CSV text: Streamlit runs it only when the button
    is clicked, on another thread, so it opens its own connection (by path)."""
    export = studies.export_trials_csv if what == "trials" else studies.export_metrics_csv
    path = db_path()
    return lambda: export(path, study_id)


def export_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    st.caption("Cells that a spreadsheet would run as a formula (= + - @) are escaped.")
    c1, c2 = st.columns(2)
    c1.download_button("Trials (CSV)", export_csv(study["id"], "trials"),
                       file_name=f"study-{study['id']}-trials.csv", mime="text/csv",
                       on_click="ignore", key="export.trials",
                       icon=":material/download:")
    c2.download_button("Per-epoch metrics (CSV)", export_csv(study["id"], "metrics"),
                       file_name=f"study-{study['id']}-metrics.csv", mime="text/csv",
                       on_click="ignore", key="export.metrics",
                       icon=":material/download:")


VIEWS = {
    "Curves and points": curves_view,
    "Trials": trials_view,
    "Sampled points": points_view,
    "Parallel coordinates": parallel_view,
    "Best so far": best_view,
    "Zoom in": zoom_view,
    "Importance": importance_view,
    "Hands on": hands_view,
    "Export": export_view,
}
