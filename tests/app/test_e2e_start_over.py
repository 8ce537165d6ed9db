"""Start over in a real headless Chromium: the designer's boxes show the built-in defaults
again, and the next click sends no old value back.

AppTest cannot see this: it holds no widget values of its own. A browser does, so a widget
whose session key is only deleted goes on showing what was typed (the learning rate's low
bound at 10 after Start over) and sends it back with the next click anywhere on the page (the
error and the disabled Launch come back). Start over sets every designer widget to the
default it is drawn with (``app.designer_rows.keyed``).
"""

from __future__ import annotations

import pytest

from tests.app.conftest import poll, screenshot, wait_settled

pytestmark = pytest.mark.browser

ERROR = '[data-testid="stAlert"]'


def designer_state(page) -> dict:
    wait_settled(page, timeout=60)
    return {
        "low": page.get_by_label("low").first.input_value(),
        "errors": page.locator(ERROR).count(),
        "launch_disabled": page.get_by_role("button", name="Launch search").is_disabled(),
        "random": page.get_by_role("radio", name="Random", exact=True).is_checked(),
        "full_budget": page.get_by_role("radio", name="Full budget").is_checked(),
    }


def test_start_over_shows_the_defaults_and_the_next_click_keeps_them(streamlit_server, page):
    page.goto(f"{streamlit_server['url']}/designer")
    page.get_by_label("low").first.wait_for(timeout=150_000)  # the first draw is slow
    wait_settled(page, timeout=60)
    default = designer_state(page)
    assert default == {"low": "1e-4", "errors": 0, "launch_disabled": False, "random": True,
                       "full_budget": True}

    page.get_by_label("low").first.fill("10")
    page.keyboard.press("Enter")
    poll(lambda: designer_state(page)["launch_disabled"], timeout=60)
    page.get_by_role("radio", name="TPE", exact=True).click()
    wait_settled(page, timeout=60)
    page.get_by_text("Successive halving (ASHA)").click()
    broken = poll(lambda: (s := designer_state(page))["errors"] and not s["full_budget"] and s,
                  timeout=60)
    assert broken["low"] == "10" and not broken["random"]

    page.get_by_role("button", name="Start over").first.click()
    assert poll(lambda: designer_state(page) == default and designer_state(page), timeout=60)
    page.get_by_label("Study name").fill("after start over")  # another rerun: the browser
    page.keyboard.press("Tab")                                 # sends its values again
    wait_settled(page, timeout=60)
    assert designer_state(page) == default
    screenshot(page, "start-over-designer")
