"""Search designer: which hyperparameters to search and how, with a live preview of where the
samples land, checked by the engine before anything is launched.

Launch creates the study (its settings; the runner asks its sampler for each trial as results
come in), spawns its detached runner and opens the live page with the study id in the URL.
"""

import numpy as np
import streamlit as st

from app.charts.search import sampler_preview
from app.common import PAGES, friendly_errors, get_conn, open_study, plain, status_badge
from app.datasets import DEFAULT_SPEC, load_dataset, spec_label
from app.designer_rows import (
    MAIN_KNOBS,
    MAX_SEED,
    MORE_KNOBS,
    SAMPLER_LABELS,
    budget_section,
    count_box,
    dask_unreachable,
    defaults,
    goal_section,
    keyed,
    pbt_note,
    render_header,
    render_row,
)
from app.drafts import forget_draft, keep_key_in_url
from app.labels import menu_words
from app.zoom_box import box_rows
from engine import study as studies
from engine.search import SAMPLERS as SAMPLER_KINDS
from engine.search import GridSampler, Space, SpaceError, sampler_from_dict

MAX_TRIALS, MAX_WORKERS = studies.MAX_TRIALS, studies.MAX_WORKERS

SAMPLERS = SAMPLER_LABELS
PREVIEW_MAX = 1000


def sampler_summary(kind: str) -> str:
    """The engine's one sentence on when to use a sampler kind."""
    return SAMPLER_KINDS[kind].summary

def partial_space(params: dict, fixed: dict) -> Space | None:
    """A space of the rows that are valid, for their previews while another row is not (one
    bad knob must not hide every other knob's preview): with the fixed values if they agree,
    else without them, else each dimension that stands on its own."""
    for values in (fixed, {}):
        try:
            return Space(params, values)
        except SpaceError:
            pass
    alone = {}
    for knob_name, dim in params.items():
        try:
            Space({knob_name: dim}, {})
            alone[knob_name] = dim
        except SpaceError:
            pass
    return Space(alone, {}) if alone else None


st.title("Search designer")
keep_key_in_url()  # this tab's own draft: a refresh of this tab finds it (app/drafts.py)
conn = get_conn()
dataset_spec = st.session_state.get("dataset_spec", DEFAULT_SPEC)
problems: list[str] = []

head = st.columns([2, 2, 1])
name = head[0].text_input("Study name", placeholder="e.g. learning-rate sweep on moons",
                          key=keyed("designer.name", ""), persist_state="session")
head[1].markdown(f"**Dataset:** {plain(spec_label(dataset_spec))}")
head[1].page_link(PAGES["data"], label="change the dataset", icon=":material/dataset:")
seed = count_box(head[2], "Seed", 0, 0, MAX_SEED, "designer.seed", problems)
head[2].button("Start over", key="designer.reset", on_click=forget_draft, args=(conn,),
               icon=":material/restart_alt:", type="tertiary",
               help="Clear this design (it is kept across refreshes and restarts until then)")

kind = st.segmented_control("Sampler", list(SAMPLERS), format_func=SAMPLERS.get,
                            default="random", required=True,
                            key=keyed("designer.sampler", "random"), persist_state="session")
st.caption(f"**{SAMPLERS[kind]}** · {sampler_summary(kind)}.")
settings = st.columns(4)
sampler: dict = {"kind": kind}
n_trials: int | None = None
parent = None
if kind in ("random", "quasi_random", "zoom", "tpe", "gp", "coarse_to_fine"):
    n_trials = count_box(settings[0], "Trials", 20, 1, MAX_TRIALS, "designer.n_trials",
                         problems)
if kind == "quasi_random":
    sampler["method"] = settings[1].selectbox(
        "Sequence", ["sobol", "lhs"], key=keyed("designer.qmc", "sobol"), persist_state="session",
        format_func={"sobol": "Sobol (scrambled)", "lhs": "Latin hypercube"}.get)
if kind == "grid":
    before = len(problems)
    sampler["points_per_axis"] = count_box(settings[0], "Points per axis", 3, 1, 50,
                                           "designer.points", problems)
    points_ok = len(problems) == before
if kind == "coarse_to_fine":
    candidates = [s for s in studies.list_studies(conn) if s["best_val_acc"] is not None]
    if not candidates:
        st.warning("Coarse-to-fine zooms into an earlier study: run a search first.")
        problems.append("coarse-to-fine needs a parent study with at least one scored trial")
    else:
        parent = settings[1].selectbox(
            "Parent study", candidates, key=keyed("designer.parent", candidates[0]),
            format_func=lambda s: f"#{s['id']} {s['name']} ({status_badge(s['status'])})")
        top_pct = settings[2].slider("Zoom around the top %", 1, 100, 20,
                                     key=keyed("designer.top", 20))
        shrink = settings[3].slider("Smallest box side (share of the range)", 0.05, 1.0, 0.5,
                                    key=keyed("designer.shrink", 0.5))

# ---- the space: one row per knob, each with a preview slot ---------------------------------
searched_default, fixed_default = defaults()
rows, slots = [], {}
if kind != "coarse_to_fine":
    st.subheader("Hyperparameters")
    st.caption("Search a knob (low, high, scale) or fix it. The preview shows where the "
               "sampler's points land: on the knob's own scale, and below on a linear axis.")

    def draw_rows(names):
        left, right = st.columns([3, 2])
        with left:
            render_header()
        right.caption("where the samples land")
        for knob_name in names:
            left, right = st.columns([3, 2])
            with left:
                row = render_row(knob_name, knob_name in searched_default,
                                 fixed_default[knob_name])
                if row.error:
                    st.error(row.error, icon=":material/error:")
                    problems.append(row.error)
                if row.warning:
                    st.warning(row.warning, icon=":material/warning:")
            rows.append(row)
            slots[knob_name] = right.empty()

    draw_rows(MAIN_KNOBS)
    with st.expander("More knobs (epsilon, batch-norm momentum, decay, init)"):
        draw_rows(MORE_KNOBS)

# ---- budget and resources ---------------------------------------------------------------------
scheduler, workers, address = None, 1, ""
objective, epoch_budget = {"metric": "val_acc"}, None
if kind == "coarse_to_fine":
    st.caption("A zoom study reuses its parent's dataset, schedule, objective, workers and "
               "executor.")
else:
    scheduler, workers, address = budget_section(problems)
    objective, epoch_budget = goal_section(problems)

# ---- check everything with the engine, then preview -------------------------------------------
space = preview_space = None
if kind != "coarse_to_fine":
    with friendly_errors("check the search space"):
        params = {r.name: r.dimension for r in rows if r.searched and not r.error}
        fixed = {r.name: r.fixed for r in rows if not r.searched and not r.error}
        if not any(r.error for r in rows):
            try:
                space = Space(params, fixed)
            except SpaceError as err:  # rows valid one by one, not together (decay, its rate)
                st.error(plain(menu_words(err)), icon=":material/error:")
                problems.append(menu_words(err))
        preview_space = space or partial_space(params, fixed)
        if preview_space is not None and kind == "grid" and points_ok:
            grid = GridSampler(sampler["points_per_axis"])
            n_trials = grid.grid_size(preview_space)
            if space is not None:
                settings[1].metric("Grid size = trials", f"{n_trials:,}")
                settings[2].caption(grid.grid_count(space))
        for row in rows:
            if row.error:
                slots[row.name].caption("No preview until this row is fixed.")
if space is None and kind != "coarse_to_fine" and not problems:
    problems.append("fix the hyperparameter rows above")
pbt_note(space, scheduler)

units, stacking = None, None
n_preview = min(max(1, int(n_trials or 0)), PREVIEW_MAX)  # a count out of range is named above
sampler_ok = kind != "grid" or points_ok
try:
    if kind == "coarse_to_fine" and parent is not None:
        plan = studies.zoom_plan(conn, parent["id"], top_fraction=top_pct / 100, shrink=shrink)
        preview_space = Space.from_dict(plan["space"])
        st.subheader("Zoom box")
        st.caption(f"Around the best {len(plan['chosen'])} of {plan['n_scored']} scored trials "
                   f"of study #{parent['id']}; it covers {100 * plan['volume']:.1f}% of the "
                   "parent's space.")
        st.dataframe(box_rows(plan["box"]["values"], plan["space"]), hide_index=True)
        units = sampler_from_dict(plan["sampler"]).sample_unit(
            preview_space, n_preview, min(max(0, seed), MAX_SEED))
        if (n_trials or 0) >= 1:
            parent_data = load_dataset(conn, parent["dataset"])
            stacking = studies.stacking_plan_for(
                plan["space"], plan["sampler"], parent["scheduler"], n_trials=int(n_trials),
                seed=min(max(0, seed), MAX_SEED), workers=parent["workers"],
                n_features=parent_data.n_features, n_classes=parent_data.n_classes)
        for knob_name in preview_space.dimension_names:
            slots[knob_name] = st.empty()
    elif preview_space is not None and preview_space.n_dims and sampler_ok:
        units = sampler_from_dict(sampler).sample_unit(preview_space, n_preview,
                                                       min(max(0, seed), MAX_SEED))
    if kind != "coarse_to_fine" and space is not None and scheduler is not None and sampler_ok:
        dataset = load_dataset(conn, dataset_spec)
        checked_trials = min(max(1, int(n_trials or 1)), MAX_TRIALS)  # out of range: named
        checked_seed = min(max(0, seed), MAX_SEED)
        studies.plan_trials(space.to_dict(), sampler, scheduler, checked_trials,  # the launch's
                            checked_seed, dataset.n_features, dataset.n_classes,  # own checks
                            epoch_budget=epoch_budget, objective=objective, preview=1)
        stacking = studies.stacking_plan_for(space.to_dict(), sampler, scheduler,
                                             n_trials=checked_trials, seed=checked_seed,
                                             workers=min(max(1, workers), MAX_WORKERS),
                                             n_features=dataset.n_features,
                                             n_classes=dataset.n_classes)
except (ValueError, LookupError) as err:  # the engine's messages name the field and value
    problems.append(menu_words(err))
    st.error(f"Not launchable yet: {plain(menu_words(err))}", icon=":material/error:")

if units is not None and preview_space is not None:
    for i, knob_name in enumerate(preview_space.dimension_names):
        dim = preview_space.params[knob_name]
        values = [dim.from_unit(float(u)) for u in np.asarray(units)[:, i]]
        slots[knob_name].plotly_chart(sampler_preview(knob_name, dim.to_dict(), values),
                                      key=f"preview.{knob_name}")

if stacking is not None:  # when the runner trains trials of one shape as one computation
    st.caption(f":material/stacks: {stacking['text']}")

# ---- launch -----------------------------------------------------------------------------------
st.divider()
if problems:
    st.warning("Before launching, fix: " + "; ".join(dict.fromkeys(problems))
               + " (or press Start over, at the top, for the built-in defaults)",
               icon=":material/front_hand:")
launch = st.button("Launch search", type="primary", disabled=bool(problems),
                   key="designer.launch")
unreachable = dask_unreachable(address) if launch and address else ""
if unreachable:  # nothing is created: the design stays on screen as it is
    st.error(f"Could not launch the search: {plain(unreachable)}", icon=":material/error:")
elif launch:
    with friendly_errors("launch the search"):
        if kind == "coarse_to_fine":
            study_id = studies.coarse_to_fine_child(
                conn, parent["id"], top_fraction=top_pct / 100, shrink=shrink,
                n_trials=int(n_trials), name=name or None)  # a seed no other study has
        else:
            study_id = studies.new_study(
                conn, name=name or None, space=space.to_dict(), sampler=sampler,
                scheduler=scheduler, dataset=dataset_spec, n_trials=n_trials, seed=int(seed),
                workers=workers, executor_address=address, objective=objective,
                epoch_budget=epoch_budget)
        studies.start_study(conn, study_id)
        open_study(study_id)
