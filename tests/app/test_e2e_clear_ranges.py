"""Clearing the range filter in a real headless Chromium: the from/to boxes show each
parameter's whole range again, and the next Apply filters nothing.

As with the designer's Start over (test_e2e_start_over.py), AppTest cannot see this: a box
whose session key is only deleted goes on showing, in the browser, the range a person typed,
and sends it back with the next Apply. Clearing sets every box to its parameter's range.
"""

from __future__ import annotations

import pytest

from engine.storage.db import connect
from tests.app.conftest import fresh, poll, screenshot, wait_settled
from tests.app.fakes import fake_study
from tests.app.test_e2e_narrow import CUT_NUMBERS

pytestmark = pytest.mark.browser

ALL_SHOWN = '[data-testid="stCaptionContainer"]:has-text("All trials shown")'
FILTERED = '[data-testid="stAlert"]:has-text("Showing")'


def test_cleared_ranges_show_the_whole_range_and_stay_cleared(streamlit_server, page):
    conn = connect(streamlit_server["db"])
    try:
        study_id = fake_study(conn, 12, 3)
    finally:
        conn.close()
    page.goto(f"{streamlit_server['url']}/studies?study={study_id}")
    fresh(page, 'button:has-text("Parallel coordinates")').click()
    wait_settled(page, timeout=60)
    low = page.get_by_label("learning_rate from")
    whole = low.input_value()
    assert page.get_by_label("l2 from").input_value() == "0.000001"
    assert page.evaluate(CUT_NUMBERS) == []  # every box shows its whole number
    low.fill("0.001")
    low.press("Tab")
    page.get_by_role("button", name="Apply to every view").click()
    fresh(page, FILTERED).wait_for(timeout=60_000)

    page.get_by_role("button", name="Clear the ranges").click()
    fresh(page, ALL_SHOWN).wait_for(timeout=60_000)
    wait_settled(page, timeout=60)
    assert poll(lambda: page.get_by_label("learning_rate from").input_value() == whole, 20)
    page.get_by_role("button", name="Apply to every view").click()  # the browser sends again
    wait_settled(page, timeout=60)
    fresh(page, ALL_SHOWN).wait_for(timeout=60_000)
    assert page.locator(FILTERED).count() == 0
    screenshot(page, "clear-ranges")
