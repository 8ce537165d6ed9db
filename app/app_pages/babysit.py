"""Babysit page (Panda): watch one model train, turn its knobs between epochs, roll back.

The page never trains. Every button writes a command through ``engine.babysit.send`` (which
starts a detached runner when none is alive); fragments poll SQLite once a second while the
session is busy (slower when a redraw takes long: ``app.live``) and re-render the whole page
once when it goes quiet. The session id lives in ``st.query_params["session"]``, so a refresh
or a server restart shows the same session.
"""

from __future__ import annotations

import json

import streamlit as st

from app.charts.babysit import (
    boundary_figure,
    curves_figure,
    event_log_rows,
    last_refusal,
    loss_jump,
)
from app.common import db_path, friendly_errors, get_conn, plain, query_int, status_badge
from app.live import live_part, refresh_note
from app.numbers import short
from app.panda_forms import knobs_form, lr_options, new_session_form, trial_picker
from app.views.babysit_health import session_health
from app.views.roundtrip import return_controls
from engine import babysit
from engine import study as studies
from engine.data.views import grid_for_boundary, original_coordinates
from engine.nn.model import predict_proba

BOUNDARY_RESOLUTION = 80
PAGE = "app_pages/babysit.py"


@st.cache_resource(max_entries=16, show_spinner=False)
def _dataset(path: str, session_id: int):
    """A session's dataset, built once (a session's data never changes; arrays read-only)."""
    return babysit.session_dataset(get_conn(), session_id)


@st.cache_data(max_entries=64, show_spinner=False)
def _boundary(path: str, session_id: int, node_id: int):
    """Grid and class probabilities of the model at one node (cached: a node never changes)."""
    data = _dataset(path, session_id)
    state = babysit.load_state_at(get_conn(), node_id)
    xx, yy, grid = grid_for_boundary(data, resolution=BOUNDARY_RESOLUTION)
    proba = predict_proba(state.spec, state.params, state.buffers, grid)
    return xx, yy, proba


def reopen(**params: int) -> None:
    """Show this page again with these query params (switch_page puts them in the browser's
    URL; setting st.query_params right before st.rerun() does not reach it)."""
    st.switch_page(PAGE, query_params={k: str(v) for k, v in params.items()})


def send(session_id: int, command: str, what: str, **payload) -> bool:
    """Send one command; a refusal shows as a clear error. True when it was queued."""
    with friendly_errors(what):
        babysit.send(get_conn(), session_id, command, **payload)
        return True
    return False


def busy(view: dict) -> bool:
    return view["status"] == "running" or view["pending_commands"] > 0


def pick_session() -> None:
    """No session chosen: open one, start one from scratch, or adopt a study's trial."""
    conn = get_conn()
    sessions = babysit.list_sessions(conn)
    if sessions:
        st.subheader("Open a session")
        labels = {s["id"]: f"#{s['id']} {s['name']} · {status_badge(s['status'])} · epoch "
                  f"{s['head_epoch']}" for s in sessions}
        chosen = st.selectbox("Session", list(labels), format_func=labels.get, key="open_pick")
        if st.button("Open", key="open_session"):
            reopen(session=chosen)
    new_tab, adopt_tab = st.tabs(["Start from scratch", "Babysit a trial of a study"])
    with new_tab:
        session_id = new_session_form(conn)
    with adopt_tab:
        trial_id = trial_picker(conn, key="adopt", button="Babysit this one")
        if trial_id is not None:
            with friendly_errors("adopt the trial"):
                session_id = babysit.adopt_trial(conn, trial_id)
    if session_id is not None:
        reopen(session=session_id)


def run_controls(session_id: int, view: dict) -> None:
    cols = st.columns([1, 0.7, 1, 1.3, 0.7])  # at 1024 px "Run until paused" needs 1.3
    if cols[0].button("Run 1 epoch", key="run1", width="stretch"):
        send(session_id, "run", "run an epoch", epochs=1)
    n = cols[1].number_input("epochs", min_value=1, max_value=10_000, value=5, step=1,
                             key="run_n", label_visibility="collapsed")
    if cols[2].button(f"Run {int(n)} epochs", key="runN", width="stretch"):
        send(session_id, "run", "run epochs", epochs=int(n))
    if cols[3].button("Run until paused", key="run_inf", width="stretch"):
        send(session_id, "run", "start the run", epochs=None)
    if cols[4].button("Pause", key="pause", width="stretch",
                      disabled=view["status"] != "running"):
        send(session_id, "pause", "pause")
    pace_control(session_id, view)


PACES = (0, 0.5, 1, 2, 5, 10)  # epochs per second; 0 = off


def pace_control(session_id: int, view: dict) -> None:
    """Watch a run: at most so many epochs a second (off by default: as fast as it trains).
    Stored with the session, so the detached runner honours it."""
    stored = view.get("pace") or 0
    options = sorted({*PACES, stored})
    key = f"pace_{session_id}"
    # Follow the stored pace when it moves (applied by the runner, or set from the CLI or
    # another tab), unless the person just moved the slider: their choice wins (it arrived in
    # the same rerun as the stored change and was lost). Until the runner applies a choice,
    # the slider keeps it.
    touched = st.session_state.pop(f"{key}_touched", False)
    if st.session_state.get(f"{key}_stored") != stored:
        if not touched:
            st.session_state[key] = st.session_state[f"{key}_sent"] = stored
        st.session_state[f"{key}_stored"] = stored
    chosen = st.select_slider(
        "Pace for watching (epochs per second)", options=options, key=key,
        format_func=lambda v: "off: full speed" if not v else f"{v:g} / s",
        help="Small models train an epoch in milliseconds: slow the run down to watch it. "
             "Off by default; the runner keeps to it until you change it.",
        on_change=lambda: st.session_state.update({f"{key}_touched": True}))
    if chosen != st.session_state.get(f"{key}_sent", stored) and send(
            session_id, "pace", "set the pace", epochs_per_second=float(chosen) or None):
        st.session_state[f"{key}_sent"] = chosen


def rollback_controls(session_id: int, view: dict) -> None:
    clicked_node = st.session_state.pop(f"rb_click_{session_id}", None)
    targets = {t["node_id"]: t for t in view["rollback_targets"]}
    st.markdown("**Roll back**")
    if not targets:
        st.caption("Train an epoch first: then every epoch with a checkpoint is a target.")
        return
    order = sorted(targets, key=lambda n: (not targets[n]["on_lineage"], -targets[n]["epoch"]))
    key, chosen_key = f"rb_{session_id}", f"rb_chosen_{session_id}"
    if clicked_node in targets:
        st.session_state[key] = clicked_node
        st.session_state[chosen_key] = True
    if not st.session_state.get(chosen_key) or st.session_state.get(key) not in targets:
        best = (view["best"] or {}).get("node_id")  # follow the best until a person picks
        st.session_state[key] = best if best in targets else order[0]

    def label(node_id: int) -> str:
        t = targets[node_id]
        loss = "" if t["val_loss"] is None else f" · val loss {t['val_loss']:.4g}"
        where = "" if t["on_lineage"] else " (abandoned)" if t["abandoned"] else " (other branch)"
        # the star first: at 1,024 px the picker shows "epoch 74 · branch 0 · val l" and no more
        star = "★ " if node_id == (view["best"] or {}).get("node_id") else ""
        rebuilt = " · the trial's, rebuilt on rollback" if t.get("rebuild") else ""
        return f"{star}epoch {t['epoch']} · branch {t['branch']}{loss}{where}{rebuilt}"

    node_id = st.selectbox("Epoch to go back to (or click a point on the curve)", order,
                           format_func=label, key=key,
                           on_change=lambda: st.session_state.update({chosen_key: True}))
    restore = st.checkbox("also restore that epoch's knobs", key=f"rb_restore_{session_id}")
    if st.button("Roll back", key=f"rb_go_{session_id}", width="stretch"):
        if send(session_id, "rollback", "roll back", node_id=int(node_id), restore_config=restore):
            st.session_state[chosen_key] = False
            st.rerun(scope="app")


def _clicked_node(event) -> int | None:
    """The node id under a clicked/selected point of the curves chart, if any."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        data = data[0] if isinstance(data, list) and data else data
        if isinstance(data, int | float):
            return int(data)
    return None


def _escape(text: str) -> str:
    """Markdown-safe text (event payloads may echo what a person typed)."""
    for ch in "\\`*_{}[]<>()#+-.!|$~":
        text = text.replace(ch, "\\" + ch)
    return text


def event_log(events: list[dict]) -> None:
    st.markdown("**Event log** (newest first)")
    with st.container(height=330):
        lines = [f"- :gray[e{row['epoch']} · b{row['branch']}] {_escape(row['what'])}"
                 for row in event_log_rows(events)]
        st.markdown("\n".join(lines) or "Nothing yet.")


def live_status(session_id: int, was_busy: bool) -> None:
    """The head's numbers and any trouble; re-renders the page once when work ends."""
    conn = get_conn()
    view = babysit.session_view(conn, session_id)
    head = babysit.session_curves(conn, session_id)
    head = next((p for c in head for p in c["points"] if p["node_id"] == view["head_node_id"]),
                {})
    # two rows of three: six in a row cut "0.1204" and "98.8%" at 1024 px with the sidebar open
    m = [*st.columns(3), *st.columns(3)]
    m[0].metric("Status", view["status"])
    m[1].metric("Epoch", view["head_epoch"])
    m[2].metric("Branch", view["branch"])
    m[3].metric("Val loss", "–" if head.get("val_loss") is None else f"{head['val_loss']:.4f}")
    m[4].metric("Val accuracy", "–" if head.get("val_acc") is None else f"{head['val_acc']:.1%}")
    m[5].metric("Learning rate", short(view["config"]["learning_rate"], 2))  # 1e-4, not 0.0…
    if view["status"] == "diverged":
        st.warning(f"The last epoch diverged: {plain(view['message'].rstrip('.'))}. The model "
                   "stays at the last good epoch: turn the learning rate down, or roll back.")
    elif view["status"] == "failed":
        st.error(f"The runner failed: {plain(view['message'])}")
    elif view["status"] == "paused" and view["message"]:
        st.warning(view["message"], icon=":material/pan_tool:")
    elif jump := loss_jump(head.get("val_loss"), view["best"], view["config"]["learning_rate"]):
        st.warning(jump, icon=":material/trending_up:")
    if refused := last_refusal(babysit.session_events(conn, session_id)):
        st.error(plain(refused), icon=":material/block:")
    refresh_note()
    if view["needs_runner"]:
        st.warning("This session's runner stopped while it had work to do.")
        if st.button("Resume the runner", key="resume_runner"):
            with friendly_errors("start a runner"):
                babysit.ensure_runner(conn, session_id)
                st.rerun(scope="app")
    if was_busy and not busy(view):
        st.rerun(scope="app")  # once, so the page re-renders without the timers


def live_charts(session_id: int) -> None:
    """Curves of every branch (a click picks a rollback target) and the decision boundary."""
    conn = get_conn()
    view = babysit.session_view(conn, session_id)
    curves = babysit.session_curves(conn, session_id)
    events = babysit.session_events(conn, session_id)
    event = st.plotly_chart(
        curves_figure(curves, events), key=f"curves_{session_id}", on_select="rerun",
        selection_mode="points", width="stretch",
    )
    clicked = _clicked_node(event)
    if clicked is not None and clicked != st.session_state.get(f"rb_seen_{session_id}"):
        st.session_state[f"rb_seen_{session_id}"] = clicked
        st.session_state[f"rb_click_{session_id}"] = clicked
        st.rerun(scope="app")  # the rollback picker lives in another fragment
    with friendly_errors("draw the decision boundary"):
        boundary(session_id, view)
    with friendly_errors("draw the network health"):
        session_health(session_id, view, curves)


def boundary(session_id: int, view: dict) -> None:
    """The decision boundary of the model at the head, for 2-D datasets."""
    data = _dataset(str(db_path()), session_id)
    if data.X_train.shape[1] != 2:
        st.caption(f"No decision boundary: this dataset has {data.X_train.shape[1]} features "
                   "(boundaries are drawn for 2-D datasets).")
        return
    xx, yy, proba = _boundary(str(db_path()), session_id, view["head_node_id"])
    st.markdown(f"**Decision boundary at epoch {view['head_epoch']}** (training points)")
    st.plotly_chart(
        boundary_figure(xx, yy, proba, original_coordinates(data, data.X_train), data.y_train,
                        class_names=data.class_names, feature_names=data.feature_names),
        key=f"boundary_{session_id}", width="stretch",
    )


def live_log(session_id: int) -> None:
    """The event log and the rollback picker."""
    conn = get_conn()
    event_log(babysit.session_events(conn, session_id))
    rollback_controls(session_id, babysit.session_view(conn, session_id))


def auto_form(session_id: int, view: dict) -> None:
    auto = view["auto"]
    with st.form(f"auto_{session_id}_{json.dumps(auto, sort_keys=True)}"):
        st.markdown("**Automatic babysitter**")
        st.caption("When the validation loss rose for *k* epochs in a row, each time by more "
                   "than the noise tolerance (or an epoch diverged): roll back to the best epoch "
                   "and multiply the learning rate by the factor. With health flags on, also "
                   "on exploding gradients, dead ReLUs or a saturated softmax (roll back to "
                   "before it and lower the rate) and a flat loss (raise the rate). It gives up, "
                   "pausing the session with the reason in the event log, after the maximum "
                   "number of acts in one run, or when the learning rate is at its floor.")
        enabled = st.toggle("on", value=bool(auto["enabled"]))
        on_flags = st.toggle("act on health flags", value=bool(auto.get("on_flags", True)))
        c = st.columns(2)
        patience = c[0].number_input("k epochs", min_value=1, max_value=1000,
                                     value=int(auto["patience"]), step=1)
        factor = c[1].number_input("factor", min_value=0.01, max_value=0.99,
                                   value=float(auto["factor"]), step=0.05, format="%.2f")
        tolerance = c[0].number_input(
            "noise tolerance (relative rise)", min_value=0.0, max_value=0.99,
            value=float(auto["tolerance"]), step=0.01, format="%.2f",
            help="a rise smaller than this share of the previous loss is noise: 0.05 = 5%")
        max_rollbacks = c[1].number_input(
            "at most this many acts a run (1-1000)", min_value=1, max_value=1000,
            value=int(auto["max_rollbacks"]), step=1)
        min_lr = st.select_slider(
            "learning-rate floor", options=lr_options(auto["min_learning_rate"]),
            value=float(auto["min_learning_rate"]), format_func=lambda v: f"{v:g}")
        if st.form_submit_button("Apply"):
            if send(session_id, "auto", "set the automatic babysitter", enabled=bool(enabled),
                    patience=int(patience), factor=float(factor), tolerance=float(tolerance),
                    max_rollbacks=int(max_rollbacks), min_learning_rate=float(min_lr),
                    on_flags=bool(on_flags)):
                st.rerun()


def adopted_from(conn, trial_id: int | None) -> str:
    """" · adopted from trial 21 of study #1" (the number the study's pages show, not the
    database id), or "" for a session started from scratch."""
    if not trial_id:
        return ""
    try:
        trial = studies.get_trial(conn, trial_id)
    except LookupError:  # the study was deleted since
        return f" · adopted from a trial (id {trial_id}) of a deleted study"
    return f" · adopted from trial {trial['number']} of study #{trial['study_id']}"


def show_session(session_id: int) -> None:
    conn = get_conn()
    view = babysit.session_view(conn, session_id)
    head = st.columns([3, 1.4])  # at 1024 px [4, 1] cut "Choose another session"
    head[0].subheader(f"#{view['id']} {plain(view['name'])}")
    head[0].caption(
        f"Model {tuple(view['model']['hidden'])} {view['model']['activation']}"
        f"{' + batch norm' if view['model']['batch_norm'] else ''} · {view['n_params']:,} "
        f"parameters · {view['config']['optimizer']} · data {view['dataset'].get('kind')}"
        + adopted_from(conn, view["source_trial_id"])
    )
    if head[1].button("Choose another session", key="close_session"):
        reopen()
    run_controls(session_id, view)
    view = babysit.session_view(conn, session_id)  # a button above may have queued work
    active = busy(view)
    # Each timed fragment sits in a container of its own: placed straight in a column, the
    # element after it (the knobs form) vanished now and then when a run ended (measured:
    # 4 of 37 short runs in Chromium; 0 of 65 with the containers).
    with st.container():
        live_part("babysit.status", live_status, session_id, active, live=active)
    left, right = st.columns([1.8, 1])
    with left, st.container():
        live_part("babysit.charts", live_charts, session_id, live=active)
    with right:
        with st.container():
            live_part("babysit.log", live_log, session_id, live=active)
        with friendly_errors("show the knobs"):
            changes = knobs_form(view)
            if changes and send(session_id, "set", "change the knobs", **changes):
                st.rerun()
        with friendly_errors("show the automatic babysitter"):
            auto_form(session_id, view)
    st.page_link("app_pages/inspector.py", label="Inspect this model", icon="🔬",
                 query_params={"session": str(session_id)})
    return_controls(conn, view)  # the round trip back to the study (app/views/roundtrip.py)


st.title("Babysit a model")
st.caption("Train one model epoch by epoch: change the learning rate between epochs, roll back "
           "to an earlier epoch (the old branch stays visible), or let the babysitter do it.")
session_id = query_int("session")
if session_id is None:
    with friendly_errors("list the sessions"):
        pick_session()
else:
    try:
        babysit.session_view(get_conn(), session_id)
    except LookupError:
        st.error(f"There is no babysitting session #{session_id} in this database.", icon="🚫")
        if st.button("Choose a session", key="bad_session"):
            reopen()
    else:
        with friendly_errors(f"show session #{session_id}"):
            show_session(session_id)
