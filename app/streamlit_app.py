"""Panda & Caviar: the entry script, a router over one module per page.

Run with ``streamlit run app/streamlit_app.py``. The pages only write intents into SQLite and
read it back; detached runner processes do the training (see engine/run/launch.py).

The guard below keeps a multiprocessing child that re-imports this script as ``__mp_main__``
(Streamlit makes it the ``__main__`` module) from starting a second app inside a worker.
"""

import sys
from pathlib import Path

if __name__ != "__mp_main__":
    ROOT = Path(__file__).resolve().parent.parent
    if str(ROOT) not in sys.path:  # `streamlit run` puts only app/ on the path
        sys.path.insert(0, str(ROOT))

    import streamlit as st

    from app.common import PAGES, friendly_errors, get_conn, sidebar_status
    from app.drafts import remember_draft, restore_draft
    from app.live import begin_run, end_run

    st.set_page_config(page_title="Panda & Caviar", page_icon="🐼", layout="wide")

    pages = {
        "Start": [
            st.Page(PAGES["overview"], title="Overview", icon=":material/home:", default=True),
            st.Page(PAGES["data"], title="Data", icon=":material/dataset:"),
        ],
        "Caviar: search many models": [
            st.Page(PAGES["designer"], title="Search designer", icon=":material/tune:"),
            st.Page(PAGES["studies"], title="Studies (live)", icon=":material/monitoring:"),
            st.Page(PAGES["compare"], title="Compare searches", icon=":material/compare_arrows:"),
        ],
        "Panda: babysit one model": [
            st.Page(PAGES["babysit"], title="Babysit", icon=":material/child_care:"),
            st.Page(PAGES["inspector"], title="Model inspector", icon=":material/biotech:"),
        ],
    }
    page = st.navigation(pages)
    begin_run()  # the live parts drawn in this run pace the page's timers (app/live.py)
    with friendly_errors("restore the search designer's draft"):
        restore_draft(get_conn())  # once per browser session: a refresh finds the design
    sidebar_status()
    stale = False
    try:
        with friendly_errors(f"show the page {page.title!r}"):
            page.run()
    finally:
        with friendly_errors("keep the search designer's draft"):
            remember_draft(get_conn())
        stale = end_run()
    if stale:  # a redraw was slower or faster than its timer allowed: declare them again
        st.rerun(scope="app")
