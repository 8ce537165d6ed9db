"""On the babysit page: "Return to the study" (the babysat model becomes a trial of the study
it was forked from) and the trials it was returned as."""

from __future__ import annotations

import sqlite3

import streamlit as st

from app.common import PAGES, friendly_errors
from engine import study as studies


def return_controls(conn: sqlite3.Connection, view: dict) -> None:
    """The button and the lineage line for a session adopted from a study's trial."""
    if not view.get("source_trial_id"):
        return
    try:
        source = studies.get_trial(conn, view["source_trial_id"])
    except LookupError:
        return  # its study was deleted
    for r in studies.returned_trials(conn, view["id"]):
        st.page_link(PAGES["studies"], icon=":material/call_made:",
                     label=f"Returned as trial {r['number']} of study #{r['study_id']}",
                     query_params={"study": str(r["study_id"])})
    busy = view["status"] == "running"
    if st.button("Return to the study", key="roundtrip.return", disabled=busy,
                 icon=":material/keyboard_return:",
                 help="Pause first. The model at the head becomes a trial of study "
                 f"#{source['study_id']}: its knobs, its whole curve, its weights."):
        with friendly_errors("return the model to its study"):
            action = studies.act(conn, source["study_id"], "return_session",
                                 {"session_id": view["id"]})
            if action["queued"]:
                studies.wait_applied(conn, action["id"], timeout=5.0)
            st.switch_page(PAGES["studies"], query_params={"study": str(source["study_id"])})
