"""End to end in headless Chromium: a study of sick nets (trained by the real runner before
the visit) shows its flags, the trial's health curves and the points coloured by a flag; a
sick babysitting session shows its health beside the loss; the inspector's teaching view
draws the boundary and the activations. Screenshots in test-artifacts/health-*.png."""

from __future__ import annotations

import pytest

from engine import babysit
from engine.storage.db import connect
from tests.app.conftest import fresh, screenshot, wait_settled
from tests.app.test_e2e_babysit import click, shoot, wait_for
from tests.engine.study.sick import BLOBS, sick_study

pytestmark = pytest.mark.browser


def text_on(page, text: str) -> bool:
    return fresh(page, "*").filter(has_text=text).count() > 0


def charts_drawn(page, n: int) -> None:
    """Wait until n Plotly charts have drawn their plot area (slow on a loaded machine)."""
    wait_for(lambda: page.locator(".js-plotly-plot .main-svg").count() >= n, timeout=60,
             what=f"{n} charts drawn")
    wait_settled(page)


def test_health_in_the_browser(streamlit_server, page):
    db = streamlit_server["db"]
    study_id = sick_study(db)
    conn = connect(db)
    session_id = babysit.new_session(
        conn, name="sick session", seed=0, dataset=BLOBS,
        model={"hidden": [16, 16], "batch_norm": False},
        config={"optimizer": "momentum", "learning_rate": 3.0, "batch_size": 16},
        auto={"enabled": True, "factor": 0.1})
    babysit.execute(conn, session_id, "run", {"epochs": 6})
    conn.close()

    page.goto(f"{streamlit_server['url']}/studies?study={study_id}")
    wait_for(lambda: text_on(page, "1 trial with exploding gradients"), what="the summary")
    charts_drawn(page, 2)
    shoot(page, "health-1-study-summary")

    click(page, "Trials")
    wait_for(lambda: text_on(page, "Network health of a trial"), what="the health picker")
    wait_for(lambda: page.locator(".js-plotly-plot").count() >= 1, what="the health chart")
    assert text_on(page, "dead ReLUs in layer")
    page.set_viewport_size({"width": 1400, "height": 1900})
    charts_drawn(page, 1)
    shoot(page, "health-2-trials-and-curves")

    click(page, "Sampled points")
    wait_for(lambda: text_on(page, "Colour by"), what="the colour picker")
    click(page, "dead ReLUs")
    wait_for(lambda: page.locator(".legendtext").filter(has_text="dead ReLUs (2)").count() >= 1,
             what="the points coloured by dead ReLUs")
    shoot(page, "health-3-points-by-flag")

    page.goto(f"{streamlit_server['url']}/babysit?session={session_id}")
    wait_for(lambda: text_on(page, "Network health"), what="the session's health")
    wait_for(lambda: text_on(page, "exploding gradients at epoch 1"), what="the auto act logged")
    page.set_viewport_size({"width": 1400, "height": 2300})
    charts_drawn(page, 3)  # the curves, the decision boundary, the health
    shoot(page, "health-4-babysit")

    page.set_viewport_size({"width": 1400, "height": 1900})
    page.goto(f"{streamlit_server['url']}/inspector?session={session_id}")
    wait_for(lambda: page.get_by_role("tab", name="Boundary and activations").count() > 0,
             what="the inspector tabs")
    page.get_by_role("tab", name="Boundary and activations").first.click()
    wait_for(lambda: text_on(page, "What each hidden layer does with point #0"),
             what="the activations")
    charts_drawn(page, 2)
    screenshot(page, "health-5-teaching-view")
