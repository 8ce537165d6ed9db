"""The "Hands on" view of a study: add or clone a trial, stop one, extend the budget, rank-by,
notes and names, archive or delete. Every button calls ``studies.act`` (the engine checks the
input and says what is wrong); the page only draws.

"Try here": a chart elsewhere on the page (the sampled points) puts the clicked point's params
in ``st.session_state["hands.try"]``; the add form starts from them.
"""

from __future__ import annotations

import sqlite3
import time
import zlib

import streamlit as st

from app.common import friendly_errors
from engine import study as studies

TRY_KEY = "hands.try"
FLASH_KEY = "hands.flash"
# While a study runs its view redraws every second: a confirmation shown on one run only would
# vanish before it is read. It stays this long, across redraws, or until the next action.
FLASH_SECONDS = 12.0
_now = time.monotonic  # the clock, replaced in tests


def _done(message: str) -> None:
    st.session_state[FLASH_KEY] = (message, _now())
    st.rerun()


def _flash() -> None:
    note = st.session_state.get(FLASH_KEY)
    if note is None:
        return
    message, since = note
    if _now() - since > FLASH_SECONDS:
        del st.session_state[FLASH_KEY]
        return
    st.success(message, icon=":material/check:")


def _act(conn, study_id: int, kind: str, payload: dict, what: str, done: str, **kw) -> None:
    with friendly_errors(what):
        action = studies.act(conn, study_id, kind, payload, **kw)
        if action["queued"]:
            studies.wait_applied(conn, action["id"], timeout=5.0)
        _done(done)


def _value_input(name: str, dim: dict, default, key: str):
    kind = dim.get("type")
    if kind == "choice":
        options = dim["options"]
        index = options.index(default) if default in options else 0
        return st.selectbox(name, options, index=index, key=key)
    if kind == "int":
        return st.number_input(name, value=int(default if default is not None else dim["low"]),
                               step=1, key=key)
    value = float(default if default is not None else dim["low"])
    return st.number_input(name, value=value, format="%.6g", key=key)


def add_form(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    dims = study["space"].get("params", {})
    numbered = {t["number"]: t for t in trials}
    start = st.selectbox("Start from", [-1, *numbered], key="hands.clone_from",
                         format_func=lambda n: "the values below" if n == -1
                         else f"a clone of trial {n}")
    base = dict(st.session_state.get(TRY_KEY) or {})
    if start != -1:
        base = numbered[start]["params"]
    elif base:
        st.caption("Starting from the point you picked on a chart (try here).")
    else:
        best = max((t for t in trials if t["best_val_acc"] is not None), default=None,
                   key=lambda t: t["best_val_acc"])
        base = best["params"] if best else {}
    # A new spot picked on a chart gets fresh inputs (a keyed input keeps what it holds).
    tried = st.session_state.get(TRY_KEY)
    picked = f".{zlib.crc32(repr(sorted(tried.items())).encode())}" if tried else ""
    # Enter confirms a number, it adds no trial (it did: then the button added a second)
    with st.form("hands.add", enter_to_submit=False):
        values = {name: _value_input(name, dim, base.get(name),
                                     f"hands.add.{name}.{start}{picked}")
                  for name, dim in dims.items()}
        name = st.text_input("Name (optional)", key="hands.add.name")
        go = st.form_submit_button("Add this trial and train it", type="primary",
                                   icon=":material/add:")
    if go:
        if start == -1:
            _act(conn, study["id"], "add_trial", {"params": values, "name": name},
                 "add the trial", "Trial added: it trains as a worker frees.", start=True)
        else:
            _act(conn, study["id"], "clone_trial", {"trial": start, "edits": values,
                                                    "name": name},
                 "clone the trial", f"Clone of trial {start} added.", start=True)


def stop_form(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    pending = [t["number"] for t in trials if t["state"] in ("waiting", "running", "paused",
                                                             "stopped")]
    if not pending:
        st.caption("No trial is waiting or training.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    number = c1.selectbox("Stop one trial (it keeps its epochs, ends 'cancelled')", pending,
                          key="hands.stop_pick", format_func=lambda n: f"trial {n}")
    if c2.button("Stop trial", key="hands.stop", icon=":material/stop:"):
        _act(conn, study["id"], "stop_trial", {"trial": number}, "stop the trial",
             f"Trial {number} stopped.")


def extend_forms(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    c1, c2 = st.columns(2)
    with c1.form("hands.more"):
        if study["n_trials"]:
            n = st.number_input("More trials", 1, 10_000, 5, key="hands.more.n")
            payload = {"trials": int(n)}
        else:
            n = st.number_input("More epochs in the budget", 1, 10_000_000, 100,
                                key="hands.more.epochs")
            payload = {"epochs": int(n)}
        more = st.form_submit_button("Extend the budget", icon=":material/playlist_add:")
    with c2.form("hands.top"):
        k = st.number_input("The best k trials", 1, 1000, 3, key="hands.top.k")
        most = max([t["epochs_done"] for t in trials] or [0])
        epochs = st.number_input("... go on to epochs", 1, 100_000, max(1, 2 * most),
                                 key="hands.top.epochs")
        top = st.form_submit_button("Continue the best", icon=":material/trending_up:")
    if more:
        _act(conn, study["id"], "more_trials", payload, "extend the budget",
             "Budget extended.", start=True)
    if top:
        _act(conn, study["id"], "extend_top", {"k": int(k), "epochs": int(epochs)},
             "continue the best trials", f"The best {k} go on to {epochs} epochs.", start=True)


def study_forms(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    at = study["rank"]["at"]
    choices = ["best", "last", "epoch"]
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    pick = c1.segmented_control("Rank trials by", choices, key="hands.rank",
                                default="epoch" if isinstance(at, int) else at, required=True,
                                format_func={"best": "best epoch", "last": "last epoch",
                                             "epoch": "epoch k"}.get)
    k = c2.number_input("k", 1, 100_000, at if isinstance(at, int) else 1, key="hands.rank.k",
                        disabled=pick != "epoch")
    want = int(k) if pick == "epoch" else pick
    if want != at:
        _act(conn, study["id"], "rank_by", {"at": want}, "change the ranking", "Ranking set.")
    st.caption(studies.rank_label({"at": at}, f"objective: {study['objective']['metric']}"))
    with st.form("hands.meta"):
        name = st.text_input("Study name", study["name"], key="hands.meta.name")
        notes = st.text_area("Notes on the study", study["notes"], key="hands.meta.notes")
        saved = st.form_submit_button("Save name and notes", icon=":material/save:")
    if saved:
        with friendly_errors("save the name and notes"):
            if name != study["name"]:
                studies.act(conn, study["id"], "rename", {"name": name})
            studies.act(conn, study["id"], "note", {"text": notes})
            _done("Saved.")
    c1, c2 = st.columns(2)
    label = "Unarchive" if study["archived"] else "Archive (hide from the lists)"
    if c1.button(label, key="hands.archive", icon=":material/archive:"):
        _act(conn, study["id"], "archive", {"archived": not study["archived"]},
             "archive the study", "Done.")
    with c2.popover("Delete the study", icon=":material/delete:"):
        st.write("Its trials, metrics and checkpoints go with it. Type its name to confirm.")
        typed = st.text_input("Name", key="hands.delete.name")
        if st.button("Delete for good", key="hands.delete", type="primary"):
            with friendly_errors("delete the study"):
                studies.remove_study(conn, study["id"], confirm=typed)
                st.query_params.pop("study", None)
                st.rerun()


def lineage_table(trials: list[dict]) -> None:
    rows = studies.study_lineage(trials)
    if not rows:
        return
    st.markdown("**Trials made by hand**")
    st.dataframe([{"trial": r["number"], "from": (
        f"clone of trial {r['from_trial']}" if r["kind"] == "clone" else
        f"trial {r['from_trial']} at epoch {r['epoch']} → session {r['session_id']} "
        f"→ epoch {r['head_epoch']}")} for r in rows], hide_index=True, key="hands.lineage")


def hands_view(conn: sqlite3.Connection, study: dict, trials: list[dict]) -> None:
    """Every action on the study, each in a small form."""
    _flash()
    st.markdown("**Add a trial** with values you choose (the sampler learns from it too)")
    add_form(conn, study, trials)
    stop_form(conn, study, trials)
    st.markdown("**Extend the search**")
    extend_forms(conn, study, trials)
    st.markdown("**The study**")
    study_forms(conn, study, trials)
    lineage_table(trials)
