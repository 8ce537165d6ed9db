"""In a real headless Chromium: Enter in a box of a form that starts something (a trial by
hand, a babysitting session) does not submit it. A person presses Enter to confirm a number;
a form submits on Enter by default, so a new user confirming a learning rate added a trial,
then added the same one again with the button (two identical trials from one click)."""

from __future__ import annotations

import time

import pytest

from engine import babysit
from engine.storage import studies as store
from engine.storage.db import connect
from tests.app.conftest import fresh, poll, wait_settled
from tests.app.fakes import fake_study

pytestmark = pytest.mark.browser


def by_hand(conn, study_id: int) -> list[dict]:
    return [t for t in store.list_trials(conn, study_id) if t["origin"] == "user"]


def test_enter_in_the_hands_on_form_adds_no_trial(streamlit_server, page):
    conn = connect(streamlit_server["db"])
    study_id = fake_study(conn, 4, 2, name="by hand")
    try:
        page.goto(f"{streamlit_server['url']}/studies?study={study_id}")
        fresh(page, 'button:has-text("Hands on")').click()
        wait_settled(page)
        box = fresh(page, 'input[aria-label="learning_rate"]').first
        box.fill("0.02")
        box.press("Enter")
        time.sleep(2)  # a submit would have written the trial by now (well under 1 s)
        wait_settled(page)
        assert by_hand(conn, study_id) == []
        fresh(page, 'button:has-text("Add this trial and train it")').click()
        poll(lambda: by_hand(conn, study_id), 20)
        time.sleep(1)
        assert len(by_hand(conn, study_id)) == 1
    finally:
        conn.close()


def test_enter_in_the_new_session_form_starts_no_session(streamlit_server, page):
    page.goto(f"{streamlit_server['url']}/babysit")
    name = fresh(page, 'input[aria-label="Name"]').first
    name.fill("my model")
    name.press("Enter")
    time.sleep(2)
    wait_settled(page)
    conn = connect(streamlit_server["db"])
    try:
        assert babysit.list_sessions(conn) == []
        assert "session=" not in page.url
    finally:
        conn.close()
