"""In a real headless Chromium, with no click: the sidebar and the Overview follow a study as
its trials finish, and once nothing runs they stop polling (issue 12 item 13).

The study's runner slot is held by an idle child process of the test (so it counts as alive)
and its trials are finished through the storage API, one at a time: the page has to catch up
by itself, within a few of its one-second reads.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from engine.storage import runners
from engine.storage import studies as store
from engine.storage.db import connect
from tests.app.conftest import poll, screenshot, wait_settled
from tests.app.fakes import fake_study

pytestmark = pytest.mark.browser

SIDEBAR = '[data-testid="stSidebar"]'
# Parts of the sidebar's links that their box cuts (an ellipsis hides the rest)
SIDEBAR_CUT = r"""() => Array.from(document.querySelectorAll(
    '[data-testid="stSidebar"] [data-testid="stPageLink"] *'))
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""



def text_of(page, selector: str) -> str:
    return " ".join(page.locator(selector).all_inner_texts())


def test_sidebar_and_overview_are_live_and_go_quiet(streamlit_server, page):
    conn = connect(streamlit_server["db"])
    # the demo's name: with its count in one link, "Demo: random search on digits · (" was all
    # the sidebar showed of "... · 0/48 trials"
    study_id = fake_study(conn, 6, 2, name="Demo: random search on digits", status="running",
                          finished=0)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        runners.register_runner(conn, "study", study_id, pid=holder.pid)
        page.goto(streamlit_server["url"])
        page.locator(f'{SIDEBAR} a:has-text("Demo: random search")').wait_for()
        assert "0/6 trials" in text_of(page, SIDEBAR)
        assert page.evaluate(SIDEBAR_CUT) == []
        trials = store.list_trials(conn, study_id)
        for done, trial in enumerate(trials[:3], start=1):
            store.set_trial_state(conn, trial["id"], "complete")
            poll(lambda d=done: f"{d}/6 trials" in text_of(page, SIDEBAR), timeout=15)
            poll(lambda d=done: f"{d}/6 trials" in text_of(page, '[data-testid="stMain"]'),
                 timeout=15)
        screenshot(page, "live-1-overview-running")
        for trial in trials[3:]:
            store.set_trial_state(conn, trial["id"], "complete")
        store.set_study_status(conn, study_id, "complete")
        holder.terminate()
        holder.wait(timeout=10)
        poll(lambda: "Nothing is running" in text_of(page, SIDEBAR), timeout=15)
        poll(lambda: "✓ done" in text_of(page, '[data-testid="stMain"]'), timeout=15)
        assert "6/6 trials" in text_of(page, '[data-testid="stMain"]')
        wait_settled(page)
        screenshot(page, "live-2-overview-done")

        # Quiet: no timer is left, so the server sends (next to) nothing for three seconds.
        frames: list[int] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(1)))
        page.reload()
        page.locator(f'{SIDEBAR} :text("Nothing is running")').wait_for()
        wait_settled(page)
        settled = len(frames)
        time.sleep(3.0)
        assert len(frames) - settled <= 1, f"{len(frames) - settled} messages while idle"

        # A button inside the live list still leads to the study's page.
        page.locator('[data-testid="stMain"] button:has-text("Open")').first.click()
        page.wait_for_url(f"**/studies?study={study_id}", timeout=20_000)
    finally:
        if holder.poll() is None:
            holder.kill()
        conn.close()
