"""End to end in a real headless Chromium: on a running study, add a trial by hand and stop
another from the "Hands on" view; the study's runner applies both.

The server and every runner it spawned are stopped in the fixtures' teardown (by pid).
Screenshots land in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import pytest

from engine.storage import studies as store
from engine.storage.db import connect
from engine.study.facade import new_study, start_study, stop_study
from tests.app.conftest import fresh, poll, screenshot, wait_settled

pytestmark = pytest.mark.browser



def test_add_a_trial_and_stop_one_on_a_running_study(streamlit_server, page):
    db = streamlit_server["db"]
    study_id = new_study(
        db, name="e2e hands", sampler={"kind": "random"}, n_trials=2, workers=1, seed=2,
        space={"params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1,
                                            "scale": "log"}},
               "fixed": {"hidden_layers": 1, "hidden_units": 16}},
        scheduler={"kind": "full_budget", "n_epochs": 10000},
        dataset={"kind": "digits"},
    )
    start_study(db, study_id)
    conn = connect(db)
    try:
        poll(lambda: any(t["epochs_done"] for t in store.list_trials(conn, study_id)), 120)
        page.goto(f"{streamlit_server['url']}/studies?study={study_id}")
        fresh(page, 'button:has-text("Hands on")').click()
        wait_settled(page)
        box = fresh(page, 'input[aria-label="learning_rate"]').first
        box.fill("0.02")
        box.press("Tab")
        screenshot(page, "e2e-hands-1-add-form")
        fresh(page, 'button:has-text("Add this trial and train it")').click()
        fresh(page, '[data-testid="stAlert"]:has-text("Trial added")').wait_for(timeout=60_000)
        user = poll(lambda: [t for t in store.list_trials(conn, study_id)
                             if t["origin"] == "user"], 20)
        assert user[0]["params"]["learning_rate"] == pytest.approx(0.02)
        screenshot(page, "e2e-hands-2-added")

        # Stop trial 0 while it trains: the runner applies it after its segment.
        fresh(page, 'button:has-text("Stop trial")').click()
        fresh(page, '[data-testid="stAlert"]:has-text("Trial 0 stopped")').wait_for(timeout=60_000)
        poll(lambda: store.list_trials(conn, study_id)[0]["state"] == "cancelled", 30)
        page.reload()
        fresh(page, 'button:has-text("Trials")').click()
        fresh(page, '[data-testid="stDataFrame"]').first.wait_for()
        poll(lambda: page.locator('button:has-text("Add this trial")').count() == 0, 10)
        screenshot(page, "e2e-hands-3-trials")
        assert store.get_study(conn, study_id)["runner_alive"]
    finally:
        stop_study(db, study_id)
        conn.close()
