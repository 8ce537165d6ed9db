"""Fixtures for the dashboard's tests, shared by every page's tests.

AppTest (no browser):
- ``app_db`` (autouse): a fresh database at ``tmp_path`` through ``$PANDA_CAVIAR_DB``, and the
  process-wide ``st.cache_resource`` cleared before and after each test.
- ``conn``: a connection to that database, for arranging data.
- ``open_page("studies", study=3)``: an AppTest of the real router, switched to a page with the
  given query params and run.

Real browser (``@pytest.mark.browser``):
- ``streamlit_server``: ``streamlit run app/streamlit_app.py`` on a free 127.0.0.1 port with its
  own database; teardown stops it and every runner recorded in that database (by pid).
- ``browser`` / ``page``: headless Debian Chromium through Playwright, a 1400x1100 viewport;
  skipped with a reason if /usr/bin/chromium is absent.
- ``fresh(page, selector)``: a locator that ignores stale elements left during a rerun.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.storage.db import connect

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app" / "streamlit_app.py"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("PANDA_CAVIAR_CHROMIUM", "/usr/bin/chromium"))
# Set by scripts/test.sh (the README's and CI's test command): a browser test that cannot run is
# then a failure, not a skip, so CI cannot pass with no browser test run.
REQUIRE_BROWSER = os.environ.get("PANDA_CAVIAR_REQUIRE_BROWSER", "") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(autouse=True)
def app_db(tmp_path, monkeypatch):
    path = tmp_path / "app.db"
    monkeypatch.setenv("PANDA_CAVIAR_DB", str(path))
    st.cache_resource.clear()
    yield path
    st.cache_resource.clear()
    stop_runners(path)


@pytest.fixture
def conn(app_db):
    connection = connect(app_db)
    yield connection
    connection.close()


@pytest.fixture
def open_page():
    def _open(name: str | None = None, timeout: float = 30, **query) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        for key, value in query.items():
            at.query_params[key] = str(value)
        at.run()
        if name is not None:
            at.switch_page(f"app_pages/{name}.py")
            for key, value in query.items():
                at.query_params[key] = str(value)
            at.run()
        return at

    return _open


def no_exception(at: AppTest) -> None:
    """Fail with the page's own message if it raised or showed an error it should not have."""
    assert not at.exception, [e.value for e in at.exception]


def runner_pids(db: Path) -> list[int]:
    """Pids of every runner recorded in the database (any kind)."""
    if not Path(db).exists():
        return []
    with sqlite3.connect(db, timeout=30) as c:
        try:
            return [r[0] for r in c.execute("SELECT pid FROM runners")]
        except sqlite3.OperationalError:
            return []


def stop_runners(db: Path, timeout: float = 5.0) -> None:
    """SIGTERM each runner the database recorded (if alive), SIGKILL it after ``timeout``."""
    pids = [p for p in runner_pids(db) if p != os.getpid() and _alive(p)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    from engine.storage.runners import pid_alive

    return pid_alive(pid)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def streamlit_server(tmp_path):
    """A real Streamlit server on this app: ``{"url", "db", "process"}``."""
    port = _free_port()
    db = tmp_path / "browser.db"
    env = {**os.environ, "PANDA_CAVIAR_DB": str(db), "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "streamlit.log", "wb")  # closed in teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError((tmp_path / "streamlit.log").read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield {"url": url, "db": db, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        stop_runners(db)


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is absent: install Debian's chromium to run browser tests"
        if REQUIRE_BROWSER:
            pytest.fail(f"{why} (the test command requires them; PANDA_CAVIAR_REQUIRE_BROWSER=0 "
                        "or -m 'not browser' to leave them out knowingly)", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    tab = context.new_page()
    # Generous: on a loaded 2-core machine (a CI box running other jobs) a rerun can take many
    # seconds; 20 s timed out waiting for buttons at load 30. Waiting costs nothing when fast.
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


FRESH = '[data-testid="stElementContainer"]:not([data-stale="true"])'


def fresh(page, selector: str):
    """Elements matching ``selector`` inside containers that are not stale (mid-rerun)."""
    return page.locator(f"{FRESH} {selector}")


def poll(check, timeout: float, interval: float = 0.25):
    """``check()``'s first truthy value within ``timeout`` seconds (AssertionError naming the
    last value otherwise)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")


SETTLING = ('[data-stale="true"], [data-testid="stStatusWidget"], '
            '[data-testid="stSkeleton"]')


def wait_settled(page, timeout: float = 15.0) -> None:
    """Wait until the app is idle: no stale elements, no running-script indicator and no
    skeleton (the grey placeholder Streamlit draws for a widget that has not arrived yet; a
    page can show a form's title with its inputs still skeletons while no script runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator(SETTLING).count() == 0:
            return
        time.sleep(0.2)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    wait_settled(page)
    page.screenshot(path=str(path))
    return path
