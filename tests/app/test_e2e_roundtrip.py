"""End to end in headless Chromium, the round trip between Caviar and Panda: a finished study's
trial is babysat from the Trials view, trained one more epoch by hand, and returned to its
study as a new trial that remembers where it came from."""

from __future__ import annotations

import pytest

from engine import study as studies
from engine.run.work import run_segment
from engine.storage.db import connect
from tests.app.conftest import fresh, screenshot, wait_settled
from tests.app.test_e2e_babysit import click, location, metric, wait_for
from tests.engine.study.helpers import run_fake

pytestmark = pytest.mark.browser


def test_babysit_a_trial_and_return_it_to_the_study(streamlit_server, page):
    db = streamlit_server["db"]
    study_id = studies.new_study(
        db, name="e2e round trip", sampler={"kind": "random"}, n_trials=2, workers=1, seed=3,
        space={"params": {"learning_rate": {"type": "float", "low": 1e-2, "high": 1e-1,
                                            "scale": "log"}},
               "fixed": {"hidden_layers": 1, "hidden_units": 8}},
        scheduler={"kind": "full_budget", "n_epochs": 3},
        dataset={"kind": "moons", "n_samples": 200},
    )
    assert run_fake(db, study_id, work_fn=run_segment) == "complete"
    page.goto(f"{streamlit_server['url']}/studies?study={study_id}")
    fresh(page, 'button:has-text("Trials")').click()
    wait_settled(page)
    fresh(page, 'button:has-text("Babysit this trial")').first.click()  # it has an icon
    wait_for(lambda: "babysit?session=1" in location(page), what="the babysit page")
    wait_for(lambda: int(metric(page, "Epoch")) == 3, what="the trial's epoch 3", page=page)
    click(page, "Run 1 epoch")
    wait_for(lambda: int(metric(page, "Epoch")) == 4 and metric(page, "Status") == "idle",
             what="epoch 4", page=page)
    wait_settled(page)
    fresh(page, 'button:has-text("Return to the study")').first.click()
    wait_for(lambda: f"studies?study={study_id}" in location(page), what="back at the study")
    conn = connect(db)
    try:
        [returned] = studies.returned_trials(conn, 1)
        assert returned["study_id"] == study_id and returned["number"] == 2
        trial = studies.get_trial(conn, returned["trial_id"])
        assert trial["epochs_done"] == 4  # the trial's 3 epochs, then the session's one
        [line] = studies.study_lineage(studies.list_trials(conn, study_id))
        assert line["number"] == 2 and line["session_id"] == 1 and line["epoch"] == 3
        wait_settled(page)
        fresh(page, 'button:has-text("Trials")').click()
        wait_for(lambda: fresh(page, '[data-testid="stDataFrame"]').count() > 0,
                 what="the trials table")
        screenshot(page, "e2e-roundtrip-returned")
    finally:
        conn.close()
