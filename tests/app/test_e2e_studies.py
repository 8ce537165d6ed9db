"""End to end in a real headless Chromium: pick data, design a small search, launch it, watch the
curves grow, refresh and find it still running, stop it.

The server and every runner it spawned are stopped in the fixtures' teardown (by pid).
Screenshots land in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import pytest

from engine.storage import studies as store
from engine.storage.db import connect
from tests.app.conftest import fresh, poll, screenshot, wait_settled

pytestmark = pytest.mark.browser

# Finite y values over every Plotly chart on the page. Scattergl draws on a canvas, so we count
# the figure data on the chart's div: ``_fullData`` holds the decoded arrays (``data`` keeps
# NumPy arrays as base64 ``{dtype, bdata}`` objects).
COUNT_POINTS = """() => {
  let total = 0;
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    for (const trace of gd._fullData || []) {
      for (const y of Array.from(trace.y || [])) {
        if (y !== null && Number.isFinite(Number(y))) total += 1;
      }
    }
  }
  return total;
}"""



def set_number(page, label: str, value: int) -> None:
    box = fresh(page, f'input[aria-label="{label}"]').first
    box.fill(str(value))
    box.press("Enter")
    wait_settled(page)


def test_launch_watch_refresh_stop(streamlit_server, page):
    url = streamlit_server["url"]
    conn = connect(streamlit_server["db"])
    page.goto(url)
    fresh(page, 'button:has-text("Run the demo study")').wait_for()
    screenshot(page, "e2e-1-overview")

    # Data: the digits (slower epochs than the 2-D sets, so the run lasts long enough to watch).
    page.get_by_role("link", name="Data").first.click()
    fresh(page, '[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Handwritten digits (8x8 images)").click()
    fresh(page, 'button:has-text("Use this dataset")').click()
    wait_settled(page)
    screenshot(page, "e2e-2-data")

    # Designer: 4 trials of 3,000 epochs on 2 workers (stopped long before they finish).
    page.get_by_role("link", name="Search designer").first.click()
    fresh(page, 'input[aria-label="Study name"]').fill("e2e digits")
    fresh(page, 'input[aria-label="Study name"]').press("Enter")
    wait_settled(page)
    assert "digits" in fresh(page, '[data-testid="stMarkdown"]:has-text("Dataset:")').inner_text()
    set_number(page, "Trials", 4)
    set_number(page, "Epochs per trial (max)", 3000)
    screenshot(page, "e2e-3-designer")
    fresh(page, 'button:has-text("Launch search")').click()

    # The live page, with the study in the URL; the curves grow while we watch.
    page.wait_for_url("**/studies?study=*", timeout=20_000)
    study_id = int(page.url.rsplit("=", 1)[1])
    first = poll(lambda: page.evaluate(COUNT_POINTS), timeout=40)
    grown = poll(lambda: (n := page.evaluate(COUNT_POINTS)) > first and n, timeout=30)
    assert grown > first
    screenshot(page, "e2e-4-studies-live")

    # A refresh finds the same study, still running.
    page.reload()
    fresh(page, 'button:has-text("Stop")').wait_for(timeout=20_000)
    assert page.url.endswith(f"study={study_id}")
    assert store.get_study(conn, study_id)["status"] == "running"
    assert "e2e digits" in fresh(page, "h3").first.inner_text()
    poll(lambda: page.evaluate(COUNT_POINTS) >= grown, timeout=20)

    # Stop: the runner checkpoints the running trials and ends; the page shows it.
    fresh(page, 'button:has-text("Stop")').click()
    poll(lambda: store.get_study(conn, study_id)["status"] == "stopped", timeout=30)
    poll(lambda: fresh(page, 'button:has-text("Resume")').count() == 1, timeout=20)
    assert "stopped" in fresh(page, "h3").first.inner_text()
    study = store.get_study(conn, study_id)
    assert study["counts"]["stopped"] + study["counts"]["waiting"] > 0
    screenshot(page, "e2e-5-studies-stopped")
    conn.close()
